"""Step 2 with custom tables, against the emulators over loopback and real Redis: the picker offers the
tables that reach a person, the choice is saved, and the plan names the custom objects to create."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bot.models import FlowState
from bot.steps import fields
from bot.views import ids
from tests.conftest import REDIS_URL
from tests.integration.sync_harness import SyncHarness


@pytest.fixture
def world(key_prefix: str) -> Iterator[SyncHarness]:
    records = {"contact": 20}
    harness = SyncHarness(REDIS_URL, key_prefix, records,
                          dynamics={"records": {**records, "new_project": 10, "new_projectnote": 5}}).start()
    harness.store.save_connection(harness.connection.model_copy(update={"state": FlowState.fields, "plan": None}))
    yield harness
    harness.stop()


def test_picker_choice_and_plan(world: SyncHarness) -> None:
    container, connection_id = world.container, world.connection.id
    view = fields.load_fields(world.store, container.metadata, container.dataverse, "T1", connection_id).to_dict()
    picker = next(b for b in view["blocks"] if b.get("block_id") == ids.CUSTOM_TABLES_BLOCK)
    assert [o["value"] for o in picker["element"]["options"]] == ["new_project", "new_projectnote"]
    fields.choose_fields(world.store, "T1", "U0REQ", connection_id, {"contact": ["emailaddress1", "firstname"]},
                         ["new_projectnote"])
    assert world.store.get_connection("T1", connection_id).custom_tables == ["new_projectnote"]
    modal = fields.build_the_plan(world.store, container.metadata, container.dataverse, container.marketo, "T1",
                                  "U0REQ", connection_id).to_dict()
    plan = world.store.get_connection("T1", connection_id).plan
    [note] = plan.custom_objects
    assert (note.api_name, note.link.field_name, [h.target for h in note.link.hops]) == (
        "dynNewProjectnote", "dynamicsContactId", ["new_project", "contact"])
    assert {f.source for f in note.fields} >= {"new_subject", "new_projectid"}
    assert "`dynNewProjectnote`" in str(modal)
    again = fields.load_fields(world.store, container.metadata, container.dataverse, "T1", connection_id).to_dict()
    kept = next(b for b in again["blocks"] if b.get("block_id") == ids.CUSTOM_TABLES_BLOCK)
    assert [o["value"] for o in kept["element"]["initial_options"]] == ["new_projectnote"]


def test_the_columns_chosen_for_a_table_are_the_only_fields_of_its_custom_object(world: SyncHarness) -> None:
    container, connection_id = world.container, world.connection.id
    fields.choose_fields(world.store, "T1", "U0REQ", connection_id, {"contact": ["emailaddress1"]},
                         ["new_project", "new_projectnote"])
    connection = world.store.get_connection("T1", connection_id)
    modal = fields.columns_view(container.metadata, container.dataverse, connection, ["new_project"]).to_dict()
    project = next(b for b in modal["blocks"] if b.get("block_id") == ids.columns_block_id("new_project"))
    offered = [o["value"] for o in project["element"]["options"]]
    assert {"new_name", "new_budget", "new_seats"} <= set(offered)
    assert not {"new_projectid", "new_contactid"} & set(offered), "the id and the person link are not columns"
    assert [o["value"] for o in project["element"]["initial_options"]] == offered, "never chosen: every column"
    assert ids.columns_block_id("new_projectnote") not in str(modal), "only the tables asked for"

    fields.choose_columns(world.store, "T1", "U0REQ", connection_id, {"new_project": ["new_budget", "new_name"]})
    assert world.store.get_connection("T1", connection_id).custom_columns == {"new_project": ["new_budget", "new_name"]}
    fields.build_the_plan(world.store, container.metadata, container.dataverse, container.marketo, "T1", "U0REQ",
                          connection_id)
    plans = {p.table: p for p in world.store.get_connection("T1", connection_id).plan.custom_objects}
    assert [f.source for f in plans["new_project"].fields] == ["new_budget", "new_name"]
    assert not plans["new_project"].refused
    assert {f.source for f in plans["new_projectnote"].fields} >= {"new_subject"}, "a table never chosen: all"

    fields.choose_columns(world.store, "T1", "U0REQ", connection_id, {"new_projectnote": ["new_subject"]})
    again = world.store.get_connection("T1", connection_id)
    assert again.plan is None, "a new choice of columns invalidates the plan"
    assert again.custom_columns == {"new_project": ["new_budget", "new_name"], "new_projectnote": ["new_subject"]}
    reopened = fields.columns_view(container.metadata, container.dataverse, again, ["new_project"]).to_dict()
    kept = next(b for b in reopened["blocks"] if b.get("block_id") == ids.columns_block_id("new_project"))
    assert [o["value"] for o in kept["element"]["initial_options"]] == [
        name for name in offered if name in {"new_budget", "new_name"}], "the saved choice, in the table's order"
