"""Custom tables added and removed after go-live through `/connect-dynamics fields`, against the emulators
over loopback with real Redis and a real RQ worker: the change picker offers the tables (the current choice
pre-selected), a team lead approves (never the requester), the custom object is made and approved in
Marketo and the table's records are written in full, the incremental cycles follow it; removing it stops
its sync while its custom object and records stay in Marketo."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from rq import SimpleWorker

from bot.approval_outcome import Outcome
from bot.models import Approval, Entity, FlowState
from bot.steps import errors, fields
from bot.sync.custom_sync import custom_objects_job_id, run_custom_objects
from bot.views import ids
from tests.integration.sync_harness import SyncHarness, synced_world

TEAM, ADMIN, LEAD = "T1", "U0REQ", "U0LEAD"
PROJECTS = 30
TYPE = "dynNewProject"


@pytest.fixture
def world(key_prefix: str) -> Iterator[SyncHarness]:
    for harness in synced_world(key_prefix, {"contact": 40}, settings={"ADMIN_USER_IDS": ADMIN,
                                                                        "TEAM_LEAD_USER_IDS": f"{ADMIN},{LEAD}"},
                                records={"contact": 40, "new_project": PROJECTS}):
        harness.store.set_active_connection(TEAM, harness.connection.id)
        yield harness


@pytest.fixture
def untracked_world(key_prefix: str) -> Iterator[SyncHarness]:
    """`new_project` has "Track changes" off in Dynamics."""
    for harness in synced_world(key_prefix, {"contact": 40}, settings={"ADMIN_USER_IDS": ADMIN,
                                                                        "TEAM_LEAD_USER_IDS": f"{ADMIN},{LEAD}"},
                                records={"contact": 40, "new_project": PROJECTS},
                                untracked_entities={"new_project"}):
        harness.store.set_active_connection(TEAM, harness.connection.id)
        yield harness


def _change_picker(world: SyncHarness) -> dict[str, Any]:
    """`/connect-dynamics fields`: the change modal as the Slack emulator holds it; its custom-table picker."""
    container = world.container
    fields.open_change(world.store, container.metadata, container.dataverse, container.slack_clients.for_team(TEAM),
                       TEAM, world.slack.new_trigger_id(ADMIN))
    view = world.slack.view_stack(ADMIN)[-1]
    assert view["callback_id"] == ids.FIELDS_CHANGE_CALLBACK
    assert any(e.get("action_id") == ids.COLUMNS_ACTION for b in view["blocks"] for e in b.get("elements", []))
    return next(b["element"] for b in view["blocks"] if b.get("block_id") == ids.CUSTOM_TABLES_BLOCK)


def _approve_change(world: SyncHarness, tables: list[str]) -> tuple[str, Approval]:
    """The change's plan (modal text) for the selection in force and `tables`, requested and approved."""
    container, connection = world.container, world.store.get_connection(TEAM, world.connection.id)
    modal = fields.build_change_plan(world.store, container.metadata, container.dataverse, container.marketo, TEAM,
                                     ADMIN, connection.id, connection.selected, tables)
    approval = fields.request_change(world.store, container.approvals, TEAM, ADMIN, connection.id)
    assert container.approvals.approve(TEAM, approval.id, ADMIN).outcome == Outcome.self_approval
    assert container.approvals.approve(TEAM, approval.id, LEAD).outcome == Outcome.approved
    return json.dumps(modal.to_dict()), world.store.get_approval(TEAM, approval.id)


def _projects(world: SyncHarness) -> dict[str, dict[str, Any]]:
    return {row["dynNewProjectId"]: row for row in world.marketo.custom_objects.records(TYPE)}


def test_a_custom_table_added_after_go_live_is_made_and_synced_and_removing_it_stops_its_sync(
    world: SyncHarness,
) -> None:
    picker = _change_picker(world)
    assert "new_project" in [o["value"] for o in picker["options"]] and not picker.get("initial_options")
    shown, approval = _approve_change(world, ["new_project"])
    assert "Custom tables added (1)" in shown and f"`{TYPE}`" in shown
    assert [o.table for o in approval.fields_change.objects_added] == ["new_project"]
    connection = world.store.get_connection(TEAM, world.connection.id)
    assert connection.state == FlowState.synced and connection.custom_tables == ["new_project"]
    assert [o.table for o in connection.plan.custom_objects] == ["new_project"]
    assert world.marketo.custom_objects.types[TYPE].state() == "approved"
    assert world.container.queue.fetch_job(custom_objects_job_id(connection.id)) is not None

    SimpleWorker([world.container.queue], connection=world.store.redis).work(burst=True)
    written = _projects(world)
    assert set(written) == {world.dynamics.record_id("new_project", i) for i in range(PROJECTS)}, "read in full"
    assert written[world.dynamics.record_id("new_project", 3)]["dynamicsContactId"] == world.dynamics.record_id(
        "contact", 3)
    world.dynamics.update_record("new_project", 3, new_name="Renamed")
    assert run_custom_objects(world.container.sync, TEAM, connection.id) == "done"
    assert _projects(world)[world.dynamics.record_id("new_project", 3)]["newName"] == "Renamed", "cycles follow it"

    picker = _change_picker(world)
    assert [o["value"] for o in picker["initial_options"]] == ["new_project"], "the current choice pre-selected"
    shown, approval = _approve_change(world, [])
    assert "removed: syncing stops" in shown and f"`{TYPE}` and its records stay in Marketo" in shown
    connection = world.store.get_connection(TEAM, world.connection.id)
    assert connection.custom_tables == [] and connection.plan.custom_objects == []
    world.dynamics.update_record("new_project", 3, new_name="Not synced")
    assert run_custom_objects(world.container.sync, TEAM, connection.id) == "skipped"
    SimpleWorker([world.container.queue], connection=world.store.redis).work(burst=True)
    kept = _projects(world)
    assert len(kept) == PROJECTS and kept[world.dynamics.record_id("new_project", 3)]["newName"] == "Renamed"
    assert TYPE in world.marketo.custom_objects.types, "the custom object stays in Marketo"


def test_a_column_added_to_a_synced_custom_table_is_made_and_its_records_read_again(world: SyncHarness) -> None:
    """Columns… in the change modal: the choice is saved without touching the plan in force; approved, the
    field is added to the custom object and the table is read in full (its delta link forgotten)."""
    connection_id = world.connection.id
    _change_picker(world)
    fields.choose_columns(world.store, TEAM, ADMIN, connection_id, {"new_project": ["new_name"]})
    _approve_change(world, ["new_project"])
    SimpleWorker([world.container.queue], connection=world.store.redis).work(burst=True)
    assert all("newBudget" not in row for row in _projects(world).values())
    old_link = world.store.delta_links.get(TEAM, connection_id, "new_project")
    assert old_link

    _change_picker(world)
    fields.choose_columns(world.store, TEAM, ADMIN, connection_id, {"new_project": ["new_seats"]})  # abandoned
    _change_picker(world)
    assert world.store.get_connection(TEAM, connection_id).custom_columns == {"new_project": ["new_name"]}, \
        "a new change starts from the columns in force"

    fields.choose_columns(world.store, TEAM, ADMIN, connection_id, {"new_project": ["new_name", "new_budget"]})
    in_force = world.store.get_connection(TEAM, connection_id)
    assert in_force.plan is not None and [f.source for f in in_force.plan.custom_objects[0].fields] == ["new_name"]
    shown, approval = _approve_change(world, ["new_project"])
    assert "new columns: `new_budget`" in shown
    assert [(c.plan.table, c.added) for c in approval.fields_change.objects_changed] == [("new_project", ["new_budget"])]
    assert "newBudget" in world.marketo.custom_objects.types[TYPE].approved.fields
    assert world.store.delta_links.get(TEAM, connection_id, "new_project") is None
    # A job of the plan before the change, still running, keeps its link (made without the new column) now.
    world.store.delta_links.put(TEAM, connection_id, "new_project", old_link)
    SimpleWorker([world.container.queue], connection=world.store.redis).work(burst=True)
    budgets = {row["new_projectid"]: row.get("new_budget")
               for row in world.dynamics.expected_records("new_project", ["new_budget"])}
    assert {key: row.get("newBudget") for key, row in _projects(world).items()} == budgets


def test_fields_marketo_already_has_on_the_type_count_toward_its_limit_in_the_plan(world: SyncHarness) -> None:
    """The type already has 49 fields (its id, its link and those of columns dropped earlier, which Marketo
    cannot delete): the plan takes one more column and refuses the next, saying why, so approval applies."""
    objects = world.marketo.custom_objects
    objects.upsert_type({"action": "createOnly", "apiName": TYPE, "displayName": "Dyn Project"})
    objects.add_fields(TYPE, [
        {"name": "dynNewProjectId", "dataType": "string", "isDedupeField": True},
        {"name": "dynamicsContactId", "dataType": "link",
         "relatedTo": {"name": "lead", "field": Entity.contact.marketo_id_field}},
        *({"name": f"droppedColumn{i:02d}", "dataType": "string"} for i in range(47))])
    objects.approve(TYPE)
    _change_picker(world)
    fields.choose_columns(world.store, TEAM, ADMIN, world.connection.id, {"new_project": ["new_name", "new_budget"]})
    shown, approval = _approve_change(world, ["new_project"])
    assert "`new_budget` not synced" in shown and f"{TYPE} already has 49" in shown
    assert [f.source for f in approval.fields_change.objects_added[0].fields] == ["new_name"]
    approved = objects.types[TYPE].approved
    assert approved is not None and len(approved.fields) == 50 and "newName" in approved.fields
    assert world.store.get_connection(TEAM, world.connection.id).custom_tables == ["new_project"]


def test_a_column_added_to_a_table_without_change_tracking_reads_it_in_full_again(
    untracked_world: SyncHarness,
) -> None:
    """Its `modifiedon` watermark is forgotten on approval: the records, unchanged since, get the new column."""
    world, connection_id = untracked_world, untracked_world.connection.id
    _change_picker(world)
    fields.choose_columns(world.store, TEAM, ADMIN, connection_id, {"new_project": ["new_name"]})
    _approve_change(world, ["new_project"])
    SimpleWorker([world.container.queue], connection=world.store.redis).work(burst=True)
    assert len(_projects(world)) == PROJECTS
    assert world.store.watermarks.get(TEAM, connection_id, "new_project") is not None

    _change_picker(world)
    fields.choose_columns(world.store, TEAM, ADMIN, connection_id, {"new_project": ["new_name", "new_budget"]})
    _approve_change(world, ["new_project"])
    assert world.store.watermarks.get(TEAM, connection_id, "new_project") is None
    SimpleWorker([world.container.queue], connection=world.store.redis).work(burst=True)
    budgets = {row["new_projectid"]: row.get("new_budget")
               for row in world.dynamics.expected_records("new_project", ["new_budget"])}
    assert any(budgets.values())
    assert {key: row.get("newBudget") for key, row in _projects(world).items()} == budgets


def test_removing_a_custom_table_takes_its_records_off_the_error_list(world: SyncHarness) -> None:
    """A removed table's records are never retried again: its entries leave the list, counted as such, so
    `/connect-dynamics errors` no longer shows them, nor would it if the table came back."""
    _approve_change(world, ["new_project"])
    SimpleWorker([world.container.queue], connection=world.store.redis).work(burst=True)
    world.dynamics.update_record("new_project", 5, new_contactid=None)
    connection_id = world.connection.id
    assert run_custom_objects(world.container.sync, TEAM, connection_id) == "done"
    listed = errors.list_errors(world.store, 5, TEAM, errors.ErrorsQuery())
    assert listed.total == 1 and world.dynamics.record_id("new_project", 5) in json.dumps(listed.message.to_dict())

    _approve_change(world, [])
    assert world.store.pending_failures(TEAM, connection_id, "new_project") == 0
    assert world.store.sync_errors.resolved_counts(TEAM, connection_id) == {"new_project:table_removed": 1}
    _approve_change(world, ["new_project"])
    assert errors.list_errors(world.store, 5, TEAM, errors.ErrorsQuery()).total == 0


def test_columns_dynamics_cannot_read_show_why_over_the_picker_which_keeps_its_choices(world: SyncHarness) -> None:
    _change_picker(world)
    picker = world.slack.view_stack(ADMIN)[-1]
    world.dynamics.fail_next(1, 403)
    container = world.container
    fields.push_columns(world.store, container.metadata, container.dataverse, container.slack_clients.for_team(TEAM),
                        TEAM, world.connection.id, ["new_project"], world.slack.new_trigger_id(ADMIN))
    stack = world.slack.view_stack(ADMIN)
    assert [view["callback_id"] for view in stack] == [ids.FIELDS_CHANGE_CALLBACK, ids.ERROR_CALLBACK]
    assert stack[0] == picker
