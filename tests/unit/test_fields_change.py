"""A change of fields after go-live: its diff against the plan in force, and how it is shown."""

from __future__ import annotations

import pytest

from bot.custom_object_models import (
    CustomObjectField,
    CustomObjectPlan,
    PersonLink,
    RefusedColumn,
    TableLookup,
)
from bot.errors import FlowError
from bot.models import (
    Approval,
    ApprovalKind,
    Connection,
    Entity,
    EntityPlan,
    FieldMapping,
    FieldPlan,
    FieldsChange,
    FlowState,
    MarketoField,
    SyncRun,
)
from bot.sync.backfill import written_plan
from bot.sync.fields_change import plan_change
from bot.views.approval import approval_request_message
from bot.views.fields import change_plan_modal
from bot.views.progress import summary_message


def _mapping(source: str) -> FieldMapping:
    return FieldMapping(source=source, read_name=source, attribute_type="StringType", marketo_name=source,
                        marketo_type="string", standard=False)


def _plan(**entities: list[str]) -> FieldPlan:
    return FieldPlan(entities=[EntityPlan(entity=Entity(e), mappings=[_mapping(s) for s in sources],
                                          id_field=Entity(e).marketo_id_field) for e, sources in entities.items()])


def test_added_and_removed_columns_per_entity() -> None:
    current = _plan(lead=["firstname", "new_a"], contact=["firstname"])
    proposed = _plan(lead=["firstname", "new_b"], contact=["firstname"])
    proposed.fields_to_create = [MarketoField(name="newB", display_name="B", data_type="string")]
    change = plan_change(current, proposed)
    assert change.added == {"lead": ["new_b"], "contact": []}
    assert change.removed == {"lead": ["new_a"], "contact": []}
    assert change.backfill_fields() == {"lead": ["new_b"]}
    assert [f.name for f in change.fields_to_create] == ["newB"] and not change.empty
    assert plan_change(current, current).empty


def test_an_entity_not_synced_yet_cannot_be_added() -> None:
    with pytest.raises(FlowError, match="Contacts"):
        plan_change(_plan(lead=["firstname"]), _plan(lead=["firstname"], contact=["firstname"]))


def test_a_backfill_writes_only_the_added_columns() -> None:
    plan = _plan(lead=["firstname", "new_b"]).entities[0]
    assert [m.source for m in written_plan(plan, ["new_b"]).mappings] == ["new_b"]


def test_the_change_plan_says_what_is_new_and_that_it_is_irreversible() -> None:
    change = FieldsChange(added={"lead": ["new_<b>"]}, removed={"lead": ["new_a"]},
                          fields_to_create=[MarketoField(name="newB", display_name="B & co", data_type="string")])
    text = str(change_plan_modal("c1", change).to_dict())
    assert "new_&lt;b&gt;" in text and "(new)" in text and "Irreversible" in text and "B &amp; co" in text
    assert "nothing is deleted in Marketo" in text


def test_the_approval_request_shows_a_change_of_fields() -> None:
    connection = Connection(team_id="T", requester="UADMIN", state=FlowState.synced, dynamics_url="https://org.crm")
    change = FieldsChange(added={"lead": ["new_b"]}, removed={"contact": ["<!here>"]},
                          fields_to_create=[MarketoField(name="newB", display_name="B", data_type="string")])
    approval = Approval(team_id="T", connection_id=connection.id, requester="UADMIN", expires_at=0,
                        kind=ApprovalKind.fields_change, fields_change=change)
    message = approval_request_message(approval, connection, None)
    text = str(message.to_dict())
    assert message.text.startswith("Approval needed: Change of fields")
    assert "`new_b`" in text and "`newB`" in text and "irreversible" in text and "&lt;!here&gt;" in text
    summary = summary_message(SyncRun(team_id="T", connection_id="c", requester="U", kind="backfill",
                                      backfill_fields={"lead": ["new_b"]}))
    assert "not created" in str(summary.to_dict())


def _object(table: str, columns: list[str]) -> CustomObjectPlan:
    name = f"dyn{table.title().replace('_', '')}"
    link = PersonLink(person="contact", lead_field="dynamicsContactId",
                      hops=[TableLookup(table=table, attribute="new_contactid", target="contact")])
    return CustomObjectPlan(table=table, entity_set=f"{table}s", primary_id=f"{table}id", api_name=name,
                            display_name=f"Dyn {table}", plural_name=f"Dyn {table}s", dedupe_field=f"{name}Id",
                            link=link, fields=[CustomObjectField(source=c, read_name=c, attribute_type="StringType",
                                                                 name=c, display_name=c, data_type="string")
                                               for c in columns])


def test_custom_tables_added_removed_and_given_other_columns() -> None:
    current = _plan(lead=["firstname"])
    current.custom_objects = [_object("new_project", ["new_name"]), _object("new_branch", ["new_city"])]
    proposed = _plan(lead=["firstname"])
    proposed.custom_objects = [_object("new_project", ["new_name", "new_budget"]), _object("new_note", ["new_x"])]
    proposed.custom_refused = [RefusedColumn(source="new_setting", reason="Marketo allows 10 custom object types")]
    change = plan_change(current, proposed)
    assert [o.table for o in change.objects_added] == ["new_note"]
    assert [o.table for o in change.objects_removed] == ["new_branch"]
    [changed] = change.objects_changed
    assert (changed.plan.table, changed.added, changed.removed) == ("new_project", ["new_budget"], [])
    assert [o.table for o in change.objects_to_make()] == ["new_note", "new_project"]
    assert not change.empty and change.backfill_fields() == {}
    only_removed = plan_change(current, _plan(lead=["firstname"]))
    assert not only_removed.empty and only_removed.objects_to_make() == []
    fewer = _plan(lead=["firstname"])
    fewer.custom_objects = [_object("new_project", []), _object("new_branch", ["new_city"])]
    narrowed = plan_change(current, fewer)
    assert narrowed.objects_to_make() == [], "a removed column makes nothing in Marketo"
    assert not narrowed.empty and [(c.plan.table, c.removed) for c in narrowed.objects_changed] == [
        ("new_project", ["new_name"])]
    assert plan_change(current, current).empty


def test_the_change_plan_and_its_request_list_the_custom_tables() -> None:
    change = FieldsChange(objects_added=[_object("new_note", ["new_x"])], objects_removed=[_object("new_branch", [])],
                          objects_refused=[RefusedColumn(source="new_setting", reason="too <many> types")])
    text = str(change_plan_modal("c1", change).to_dict())
    assert "Custom tables added (1)" in text and "`dynNewNote`" in text and "`new_x`" in text
    assert "`new_branch` — removed: syncing stops" in text and "`dynNewBranch` and its records stay in Marketo" in text
    assert "`new_setting` not synced: too &lt;many&gt; types" in text
    assert "cannot change once approved" in text and "No change." not in text
    connection = Connection(team_id="T", requester="UADMIN", state=FlowState.synced, dynamics_url="https://org.crm")
    approval = Approval(team_id="T", connection_id=connection.id, requester="UADMIN", expires_at=0,
                        kind=ApprovalKind.fields_change, fields_change=change)
    request = str(approval_request_message(approval, connection, None).to_dict())
    assert "`dynNewNote`" in request and "`dynNewBranch` and its records stay in Marketo" in request
