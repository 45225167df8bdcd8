"""The duplicate-email report shown before a sync: Marketo does not dedupe against this sync (D6)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Protocol

from pydantic import BaseModel

from bot.dynamics.client import Page
from bot.models import Entity


class PageSource(Protocol):
    def iter_pages(self, entity: Entity | str, select: list[str], *, track_changes: bool = True,
                   start_link: str | None = None) -> Iterable[Page]: ...


class DuplicateReport(BaseModel):
    total_duplicate_emails: int  # distinct addresses used by more than one record
    records_involved: int  # records carrying one of those addresses
    examples: list[tuple[str, int]]  # (email, how many records), most shared first


def normalize_email(value: object) -> str:
    return value.strip().lower() if isinstance(value, str) else ""


def find_duplicate_emails(
    client: PageSource,
    entities: Iterable[Entity] = (Entity.lead, Entity.contact),
    top: int = 5,
    *,
    filter_attributes: Mapping[Entity, str | None] | None = None,
) -> DuplicateReport:
    """Streams `emailaddress1` of every record (a lead and a contact sharing an address count as a
    duplicate: they become two Marketo persons). Memory grows with distinct emails only. With
    `filter_attributes`, records Marketo's filter excludes (an explicit false) are not counted."""
    counts: Counter[str] = Counter()
    for entity in entities:
        flag = (filter_attributes or {}).get(entity)
        select = [entity.primary_id, "emailaddress1"] + ([flag] if flag else [])
        for page in client.iter_pages(entity, select, track_changes=False):
            for record in page.records:
                if flag and record.get(flag) is False:
                    continue
                email = normalize_email(record.get("emailaddress1"))
                if email:
                    counts[email] += 1
    shared = [(email, n) for email, n in counts.items() if n > 1]
    shared.sort(key=lambda item: (-item[1], item[0]))
    return DuplicateReport(
        total_duplicate_emails=len(shared),
        records_involved=sum(n for _, n in shared),
        examples=shared[:top],
    )
