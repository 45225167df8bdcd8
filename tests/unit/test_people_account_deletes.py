"""Account deletes flag the people who worked there (`bot.sync.people`), with Marketo as a small fake."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bot.marketo.models import RecordResult
from bot.models import Connection, Entity, EntityPlan, FieldPlan, MarketoField
from bot.store import Store
from bot.sync.identity import ACCOUNT_DELETED_FIELD
from bot.sync.people import People


@dataclass
class FakeMarketo:
    created: list[list[MarketoField]] = field(default_factory=list)
    writes: list[tuple[list[dict], str, str]] = field(default_factory=list)

    def create_lead_fields(self, fields: list[MarketoField]) -> None:
        self.created.append(fields)

    def sync_leads(self, rows: list[dict], lookup: str, action: str = "createOrUpdate") -> list[RecordResult]:
        self.writes.append((rows, lookup, action))
        return [RecordResult(status="updated") for _ in rows]


def connection(*, field_planned: bool) -> Connection:
    plans = [EntityPlan(entity=e, mappings=[], id_field=e.marketo_id_field) for e in Entity]
    return Connection(team_id="T1", requester="U1", plan=FieldPlan(
        entities=plans, fields_existing=[ACCOUNT_DELETED_FIELD.name] if field_planned else []))


def test_the_people_of_a_deleted_account_are_flagged_update_only(store: Store) -> None:
    marketo = FakeMarketo()
    people = People(marketo, store, connection(field_planned=True))
    store.people.place("T1", people.connection_id, {"contact:c1": "acc-1", "lead:l1": "acc-1", "contact:c2": "acc-2"})

    assert people.flag_account_deletes(["ACC-1"]) == 2  # Dataverse ids compare without case
    written: dict[str, Any] = {lookup: (rows, action) for rows, lookup, action in marketo.writes}
    assert written == {"dynamicsContactId": ([{"dynamicsContactId": "c1", "dynamicsAccountDeleted": True}], "updateOnly"),
                       "dynamicsLeadId": ([{"dynamicsLeadId": "l1", "dynamicsAccountDeleted": True}], "updateOnly")}
    assert marketo.created == []  # the plan created the field under approval
    assert store.people.people_at("T1", people.connection_id, "acc-1") == []  # forgotten once flagged
    assert store.people.people_at("T1", people.connection_id, "acc-2") == ["contact:c2"]


def test_a_plan_from_before_the_field_gets_it_when_first_needed(store: Store) -> None:
    marketo = FakeMarketo()
    people = People(marketo, store, connection(field_planned=False))
    assert people.flag_account_deletes(["acc-9"]) == 0 and marketo.created == []  # nobody worked there
    store.people.place("T1", people.connection_id, {"contact:c1": "acc-1"})
    assert people.flag_account_deletes(["acc-1"]) == 1
    assert marketo.created == [[ACCOUNT_DELETED_FIELD]]
