"""The per-run ledger of records that did not make it into Marketo, with the reason.

Kept in Redis (a list per run), never in memory: a run of a million records with many
skips must still produce the whole report. Entries are appended only inside the checkpoint
transaction that books their batch, so a batch rewritten after a crash is never listed twice.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from pydantic import BaseModel

from bot.bounded_text import BoundedText
from bot.store import RunTx, Store

READ_CHUNK = 1000


class LedgerEntry(BaseModel):
    """One record Marketo did not take. Every text is bounded: Marketo's reasons can be huge."""

    entity: str
    id: BoundedText
    email: BoundedText | None = None
    code: BoundedText
    message: BoundedText


class Ledger:
    def __init__(self, store: Store, team_id: str, run_id: str) -> None:
        self.skips = store.skip_list(team_id, run_id)

    @staticmethod
    def rows(entries: Iterable[LedgerEntry]) -> list[str]:
        return [entry.model_dump_json() for entry in entries]

    def add_in(self, tx: RunTx, entries: Iterable[LedgerEntry]) -> None:
        """Queue the entries in the booking transaction (after its reads)."""
        tx.append_skips(self.rows(entries))

    def count(self) -> int:
        return self.skips.count()

    def __iter__(self) -> Iterator[LedgerEntry]:
        """Stream the entries in chunks, so memory stays flat however long the list is."""
        start = 0
        while True:
            rows = self.skips.chunk(start, READ_CHUNK)
            for raw in rows:
                yield LedgerEntry.model_validate_json(raw)
            if len(rows) < READ_CHUNK:
                return
            start += READ_CHUNK
