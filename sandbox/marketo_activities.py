"""Marketo's activity log for the emulator: activity types, who made a change, date paging tokens.

Every lead write appends activities (New Lead; one Change Data Value per changed field; Merge
Leads; Delete Lead; Call Webhook). Each carries the attributes that tell an API change from a
person's: `Reason`/`Source` (or `Source Type` on New Lead) = "Web service API" for any API
client, and, for API writes only, the lowercase `api method name`, `modifying user` (the API
user) and `request id` seen in recorded responses. A person's change (form fill, list import,
lead detail page, smart campaign) has its own Source and Reason and no `request id`.

Paging tokens are positions in the log, so a saved token resumes exactly where it stopped.
A read scans at most `scan_block` activities, so like the real service it can answer a page
with fewer items than asked, even none, while `moreResult` is true.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

NEW_LEAD = 12
CHANGE_DATA_VALUE = 13
CALL_WEBHOOK = 110
MERGE_LEADS = 32
DELETE_LEAD = 37
API_SOURCE = "Web service API"
LEAD_CHANGE_TYPES = frozenset({NEW_LEAD, CHANGE_DATA_VALUE})


@dataclass(frozen=True)
class ActivityType:
    id: int
    name: str
    description: str
    primary: tuple[str, str] | None  # (name, dataType) of the primary attribute
    attributes: tuple[tuple[str, str], ...] = ()

    def describe(self) -> dict[str, Any]:
        item: dict[str, Any] = {"id": self.id, "name": self.name, "description": self.description}
        if self.primary:
            item["primaryAttribute"] = {"name": self.primary[0], "dataType": self.primary[1]}
        item["attributes"] = [{"name": n, "dataType": t} for n, t in self.attributes]
        return item


ACTIVITY_TYPES: tuple[ActivityType, ...] = (
    ActivityType(NEW_LEAD, "New Lead", "New person/record is added to the lead database",
                 ("Lead ID", "integer"), (("Created Date", "date"), ("Source Type", "string"))),
    ActivityType(CHANGE_DATA_VALUE, "Change Data Value", "Changed attribute value for a person",
                 ("Attribute Name", "integer"),
                 (("Reason", "string"), ("New Value", "string"), ("Old Value", "string"), ("Source", "string"),
                  ("Campaign", "string"), ("Channel", "string"))),
    ActivityType(MERGE_LEADS, "Merge Leads", "Merge leads", ("Lead ID", "integer"),
                 (("Merge IDs", "string"), ("Merge Fields", "string"))),
    ActivityType(DELETE_LEAD, "Delete Lead", "Delete a person", ("Lead ID", "integer")),
    ActivityType(CALL_WEBHOOK, "Call Webhook", "Call a webhook", ("Webhook ID", "integer"),
                 (("Error Type", "string"), ("Response", "string"))),
)


@dataclass(frozen=True)
class Origin:
    """Who made a change, as the attributes of the activities it appends."""

    source: str
    reason: str
    modifying_user: str | None = None
    api_method: str | None = None
    request_id: str | None = None

    @classmethod
    def api(cls, api_user: str, request_id: str, method: str) -> Origin:
        return cls(API_SOURCE, API_SOURCE, api_user, method, request_id)

    @classmethod
    def person(cls, source: str, reason: str | None = None, user: str | None = None) -> Origin:
        return cls(source, reason or source, user)

    def _api_attributes(self) -> list[tuple[str, Any]]:
        return [("api method name", self.api_method), ("modifying user", self.modifying_user),
                ("request id", self.request_id)]

    def new_lead(self) -> list[tuple[str, Any]]:
        return [("Source Type", self.source), *self._api_attributes()]

    def change(self) -> list[tuple[str, Any]]:
        return [("Reason", self.reason), ("Source", self.source), *self._api_attributes()]


@dataclass(frozen=True)
class FieldChange:
    id: int
    name: str
    new_value: str | None
    old_value: str | None


@dataclass
class Activity:
    seq: int
    lead_id: int
    at: float  # epoch seconds
    type_id: int
    attributes: list[tuple[str, Any]]
    change: FieldChange | None = None
    primary: tuple[int, str] | None = None  # primaryAttributeValueId, primaryAttributeValue

    @property
    def activity_date(self) -> str:
        return datetime.fromtimestamp(int(self.at), UTC).strftime("%Y-%m-%dT%H:%M:%S+0000")

    def _head(self) -> dict[str, Any]:
        return {"id": self.seq, "marketoGUID": str(self.seq), "leadId": self.lead_id,
                "activityDate": self.activity_date, "activityTypeId": self.type_id}

    def as_lead_change(self) -> dict[str, Any]:
        """An item of Get Lead Changes: the changed field in `fields`, New Lead with `fields: []`."""
        fields = []
        if self.change:
            fields.append({"id": self.change.id, "name": self.change.name, "newValue": self.change.new_value,
                           **({"oldValue": self.change.old_value} if self.change.old_value is not None else {})})
        return {**self._head(), "fields": fields,
                "attributes": _attributes([*self.attributes, ("Lead ID", self.lead_id)])}

    def as_activity(self) -> dict[str, Any]:
        """An item of Get Lead Activities: values as attributes, empty ones omitted."""
        item = self._head()
        extra: list[tuple[str, Any]] = []
        if self.change:
            item.update(primaryAttributeValueId=self.change.id, primaryAttributeValue=self.change.name)
            extra = [("New Value", self.change.new_value), ("Old Value", self.change.old_value)]
        elif self.primary:
            item.update(primaryAttributeValueId=self.primary[0], primaryAttributeValue=self.primary[1])
        item["attributes"] = _attributes([*self.attributes, *extra])
        return item


def _attributes(pairs: Iterable[tuple[str, Any]]) -> list[dict[str, Any]]:
    return [{"name": name, "value": value} for name, value in pairs if value is not None and value != ""]


def as_text(value: Any) -> str | None:
    """Field values in activities are strings (booleans as true/false); null stays null."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class BadToken(ValueError):
    """A paging token this log did not issue."""


@dataclass
class ActivityLog:
    """Append-only; callers hold the emulator's lock."""

    scan_block: int = 1000
    _items: list[Activity] = field(default_factory=list)
    _times: list[float] = field(default_factory=list)

    def append(self, lead_id: int, type_id: int, attributes: list[tuple[str, Any]],
               change: FieldChange | None = None, primary: tuple[int, str] | None = None) -> Activity:
        at = max(time.time(), self._times[-1] if self._times else 0.0)  # dates never go back
        activity = Activity(len(self._items) + 1, lead_id, at, type_id, attributes, change, primary)
        self._items.append(activity)
        self._times.append(at)
        return activity

    def record_write(self, lead_id: int, before: dict[str, Any] | None, after: dict[str, Any],
                     origin: Origin, field_ids: dict[str, int]) -> list[Activity]:
        """New Lead for a created lead (its first values log no Change Data Value, as in Marketo);
        otherwise one Change Data Value per field whose value changed."""
        if before is None:
            return [self.append(lead_id, NEW_LEAD, origin.new_lead(), primary=(lead_id, str(lead_id)))]
        added = []
        for name, value in after.items():
            if name in {"id", "createdAt", "updatedAt"} or as_text(value) == as_text(before.get(name)):
                continue
            change = FieldChange(field_ids.get(name, 0), name, as_text(value), as_text(before.get(name)))
            added.append(self.append(lead_id, CHANGE_DATA_VALUE, origin.change(), change))
        return added

    def items(self) -> list[Activity]:
        return list(self._items)

    @staticmethod
    def token(position: int) -> str:
        return base64.b32encode(f"{position}".encode()).decode()

    @staticmethod
    def position(token: str) -> int:
        try:
            return int(base64.b32decode(token.encode()).decode())
        except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
            raise BadToken(token) from exc

    def token_since(self, since: datetime) -> str:
        return self.token(bisect.bisect_left(self._times, since.timestamp()))

    def page(self, token: str, batch_size: int, keep: Callable[[Activity], bool]) -> tuple[list[Activity], str, bool]:
        """Up to `batch_size` kept activities from the token's position, scanning at most `scan_block`.
        Returns (items, next token, more)."""
        start = self.position(token)
        if start < 0 or start > len(self._items):
            raise BadToken(token)
        found: list[Activity] = []
        position = start
        end = min(len(self._items), start + self.scan_block)
        while position < end and len(found) < batch_size:
            if keep(self._items[position]):
                found.append(self._items[position])
            position += 1
        return found, self.token(position), position < len(self._items)
