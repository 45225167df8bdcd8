"""Custom tables end to end over loopback: discovered in the Dynamics emulator, planned, their Marketo
custom objects made, then written by the initial sync after the people (real Redis, a real RQ worker)
and by the incremental cycle from their delta links. Records whose person is not in Marketo are reported."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

import pytest
from rq import SimpleWorker

from bot.approval_effects import SchemaNotApplied
from bot.models import Approval, ApprovalStatus, Entity, RunStatus
from bot.steps import errors
from bot.sync import entry, incremental, runs
from bot.sync.custom_objects import plan_custom_objects, reachable_tables
from bot.sync.custom_sync import run_custom_objects
from bot.sync.watermarks import CLOCK_SKEW_SECONDS
from tests.conftest import REDIS_URL
from tests.integration.sync_harness import SyncHarness

PEOPLE = {"contact": 60}
CUSTOM = {"new_project": 80, "new_projectnote": 50}


@pytest.fixture
def world(key_prefix: str) -> Iterator[SyncHarness]:
    yield from _world(key_prefix, untracked=set())


@pytest.fixture
def untracked_world(key_prefix: str) -> Iterator[SyncHarness]:
    """`new_project` has "Track changes" off in Dynamics."""
    yield from _world(key_prefix, untracked={"new_project"})


def _world(key_prefix: str, untracked: set[str]) -> Iterator[SyncHarness]:
    harness = SyncHarness(REDIS_URL, key_prefix, PEOPLE, dynamics={"records": {**PEOPLE, **CUSTOM},
                                                                   "untracked_entities": untracked}).start()
    with harness.container.dataverse("T1", harness.connection.id) as client:
        tables = client.with_columns(client.custom_tables(), ["new_project", "new_projectnote"])
    plans, refused = plan_custom_objects(reachable_tables(tables), {
        "new_project": ["new_name", "new_budget", "new_seats", "new_startdate", "new_isactive"],
        "new_projectnote": ["new_subject"]}, set())
    assert refused == []
    marketo = harness.container.marketo()
    for plan in plans:
        marketo.ensure_custom_object(plan)
    connection = harness.connection.model_copy(update={"plan": harness.connection.plan.model_copy(
        update={"custom_objects": plans})})
    harness.store.save_connection(connection)
    harness.connection = connection
    entry.install(harness.container.sync)
    yield harness
    entry.install(None)
    harness.stop()


def _expected_linked(world: SyncHarness, table: str) -> int:
    """Records whose person is a contact that passed the sync filter (so is in Marketo)."""
    in_marketo = {row["dynamicsContactId"] for row in world.marketo.leads() if row.get("dynamicsContactId")}
    contact_of_project = {world.dynamics.record_id("new_project", i):
                          world.dynamics.record_id("contact", i % PEOPLE["contact"])
                          for i in range(CUSTOM["new_project"])}
    if table == "new_project":
        return sum(contact in in_marketo for contact in contact_of_project.values())
    return sum(contact_of_project[world.dynamics.record_id("new_project", i % CUSTOM["new_project"])] in in_marketo
               for i in range(CUSTOM["new_projectnote"]))


def test_initial_sync_writes_custom_objects_after_people_and_reports_unlinked(world: SyncHarness) -> None:
    run = runs.start_initial_sync(world.store, world.container.queue, world.connection)
    SimpleWorker([world.container.queue], connection=world.store.redis).work(burst=True)
    assert world.store.get_run("T1", run.id).status == RunStatus.finished
    objects = world.marketo.custom_objects
    projects = objects.records("dynNewProject")
    notes = objects.records("dynNewProjectnote")
    assert 0 < len(projects) == _expected_linked(world, "new_project") < CUSTOM["new_project"]
    assert len(notes) == _expected_linked(world, "new_projectnote")
    sample = projects[0]
    index = world.dynamics.index_of("new_project", sample["dynNewProjectId"])
    assert index is not None and sample["newName"] == f"Project Name {index}"
    assert sample["dynamicsContactId"] == world.dynamics.record_id("contact", index % PEOPLE["contact"])
    unlinked = world.store.sync_errors.pending_failures("T1", world.connection.id, "new_project")
    assert unlinked == CUSTOM["new_project"] - len(projects)  # reported on the error list, not dropped
    world.store.set_active_connection("T1", world.connection.id)
    listed = errors.list_errors(world.store, 3, "T1", errors.ErrorsQuery())
    people_errors = world.store.sync_errors.count("T1", world.connection.id, ["contact"], None)
    unlinked_notes = world.store.sync_errors.pending_failures("T1", world.connection.id, "new_projectnote")
    assert listed.total == people_errors + unlinked + unlinked_notes > people_errors  # `/connect-dynamics errors`
    assert world.store.delta_links.get("T1", world.connection.id, "new_project")


def test_incremental_cycle_writes_only_changed_custom_records(world: SyncHarness) -> None:
    services = world.container.sync
    assert run_custom_objects(services, "T1", world.connection.id) == "skipped"  # not syncing or synced yet
    run = runs.start_initial_sync(world.store, world.container.queue, world.connection)
    SimpleWorker([world.container.queue], connection=world.store.redis).work(burst=True)
    assert world.store.get_run("T1", run.id).status == RunStatus.finished
    linked = next(p["dynNewProjectId"] for p in world.marketo.custom_objects.records("dynNewProject"))
    index = world.dynamics.index_of("new_project", linked)
    world.dynamics.update_record("new_project", index, new_name="Renamed")
    world.marketo.reset_counters()
    assert run_custom_objects(services, "T1", world.connection.id) == "done"
    renamed = [p for p in world.marketo.custom_objects.records("dynNewProject") if p["newName"] == "Renamed"]
    assert [p["dynNewProjectId"] for p in renamed] == [linked]
    calls = world.marketo.calls("/rest/v1/customobjects/dynNewProject.json")
    # the listed failures retried (one batch), then the one changed record: not the whole table again
    assert len(calls) == 2

    # The scheduled cycle: the custom tables' job waits for the people's jobs, then runs.
    world.dynamics.update_record("new_project", index, new_name="Scheduled")
    due = world.store.incremental.due_at("T1", world.connection.id)
    enqueued = incremental.schedule_due(world.store, world.container.queue, world.settings, now=due + 1)
    people_job, _write_back, custom = enqueued
    assert custom == f"custom-objects-{world.connection.id}"
    assert world.container.queue.fetch_job(custom).dependency_ids == [people_job]
    SimpleWorker([world.container.queue], connection=world.store.redis).work(burst=True)
    assert [p["newName"] for p in world.marketo.custom_objects.records("dynNewProject")
            if p["dynNewProjectId"] == linked] == ["Scheduled"]


def test_a_table_without_change_tracking_follows_a_modifiedon_watermark(untracked_world: SyncHarness,
                                                                        caplog: pytest.LogCaptureFixture) -> None:
    """After the initial sync (a full read) the next cycle reads only what was modified since the initial
    sync started, less the clock skew; the watermark then moves to the change it wrote."""
    world = untracked_world
    plan = next(p for p in world.connection.plan.custom_objects if p.table == "new_project")
    assert not plan.change_tracking
    run = runs.start_initial_sync(world.store, world.container.queue, world.connection)
    SimpleWorker([world.container.queue], connection=world.store.redis).work(burst=True)
    assert world.store.get_run("T1", run.id).status == RunStatus.finished
    synced = world.marketo.custom_objects.records("dynNewProject")
    assert len(synced) == _expected_linked(world, "new_project")  # read in full
    started = world.store.get_run("T1", run.id).started_at
    first = world.store.watermarks.get("T1", world.connection.id, "new_project")
    assert first is not None and first.modified_on == time.strftime(
        "%Y-%m-%dT%H:%M:%SZ", time.gmtime(started - CLOCK_SKEW_SECONDS))
    assert world.store.delta_links.get("T1", world.connection.id, "new_project") is None
    linked = synced[0]["dynNewProjectId"]
    index = world.dynamics.index_of("new_project", linked)
    world.dynamics.update_record("new_project", index, new_name="Renamed")
    world.marketo.reset_counters()

    with caplog.at_level(logging.INFO, logger="bot.sync.custom_sync"):
        assert run_custom_objects(world.container.sync, "T1", world.connection.id) == "done"

    assert [p["newName"] for p in world.marketo.custom_objects.records("dynNewProject")
            if p["dynNewProjectId"] == linked] == ["Renamed"]
    read = [r.getMessage() for r in caplog.records if r.getMessage().startswith("custom table new_project:")]
    assert read and read[0].startswith("custom table new_project: 1 read")  # Dataverse returned that row only
    mark = world.store.watermarks.get("T1", world.connection.id, "new_project")
    assert mark is not None and mark.modified_on > first.modified_on and mark.ids == [linked]


def test_approval_makes_the_custom_objects_and_a_retry_after_a_refusal_finishes(world: SyncHarness) -> None:
    """The type is made only by the approval's effects; a refusal stops before the sync, a retry completes."""
    objects = world.marketo.custom_objects
    objects.types.clear()  # as before approval: the fixture made them to sync
    world.marketo.reset_counters()
    approval = Approval(team_id="T1", connection_id=world.connection.id, requester="U0REQ", decided_by="U0LEAD",
                        status=ApprovalStatus.approved, expires_at=1_800_000_000)
    world.store.save_approval(approval)
    effects = world.container.approvals.effects
    world.marketo.fail_next(1, "1003", path="/rest/v1/customobjects/schema/dynNewProjectnote/approve.json")
    with pytest.raises(SchemaNotApplied, match="dynNewProjectnote"):
        effects.on_approved(approval)
    assert objects.types["dynNewProjectnote"].state() == "draft"
    assert world.store.get_connection("T1", world.connection.id).run_id is None  # nothing synced
    effects.on_approved(world.store.get_approval("T1", approval.id))
    assert {name: kind.state() for name, kind in objects.types.items()} == {
        "dynNewProject": "approved", "dynNewProjectnote": "approved"}
    assert len(world.marketo.calls("/rest/v1/customobjects/schema.json")) == 2  # each type made once
    assert world.store.get_connection("T1", world.connection.id).run_id is not None


def test_a_refused_record_is_retried_by_later_cycles_without_changing_in_dynamics(world: SyncHarness) -> None:
    """A project whose contact is not in Marketo is refused; once the contact is synced, the next cycle writes
    the project from the error list, though the project itself never changed."""
    run = runs.start_initial_sync(world.store, world.container.queue, world.connection)
    SimpleWorker([world.container.queue], connection=world.store.redis).work(burst=True)
    assert world.store.get_run("T1", run.id).status == RunStatus.finished
    in_marketo = {row["dynamicsContactId"] for row in world.marketo.leads() if row.get("dynamicsContactId")}
    refused = [i for i in range(CUSTOM["new_project"])
               if world.dynamics.record_id("contact", i % PEOPLE["contact"]) not in in_marketo]
    index = refused[0]
    contact = index % PEOPLE["contact"]
    gone, still = [i for i in refused if i % PEOPLE["contact"] != contact][:2]  # their contacts stay out
    project = world.dynamics.record_id("new_project", index)
    errors = world.store.sync_errors
    listed = errors.pending_failures("T1", world.connection.id, "new_project")
    assert project not in {p["dynNewProjectId"] for p in world.marketo.custom_objects.records("dynNewProject")}

    world.dynamics.update_record("contact", contact, new_synctomkto=True)
    world.dynamics.delete_record("new_project", gone)
    services = world.container.sync
    assert incremental.run_incremental(services, "T1", world.connection.id, Entity.contact) == "done"
    assert run_custom_objects(services, "T1", world.connection.id) == "done"

    assert project in {p["dynNewProjectId"] for p in world.marketo.custom_objects.records("dynNewProject")}
    left = errors.pending_failures("T1", world.connection.id, "new_project")
    assert left < listed  # it left the error list as retried
    resolved = errors.resolved_counts("T1", world.connection.id)
    assert resolved.get("new_project:retried_ok", 0) >= 1 and resolved.get("new_project:deleted") == 1
    entries = {e.id: e for e in errors.iter_errors("T1", world.connection.id, ["new_project"])}
    assert world.dynamics.record_id("new_project", gone) not in entries  # deleted in Dynamics: off the list
    assert entries[world.dynamics.record_id("new_project", still)].attempts == 2  # refused again: one more try


def test_an_expired_change_token_reads_the_table_in_full_and_later_cycles_follow_it_again(world: SyncHarness) -> None:
    services = world.container.sync
    run = runs.start_initial_sync(world.store, world.container.queue, world.connection)
    SimpleWorker([world.container.queue], connection=world.store.redis).work(burst=True)
    assert world.store.get_run("T1", run.id).status == RunStatus.finished
    expired = world.store.delta_links.get("T1", world.connection.id, "new_project")
    linked = next(p["dynNewProjectId"] for p in world.marketo.custom_objects.records("dynNewProject"))
    index = world.dynamics.index_of("new_project", linked)
    world.dynamics.expire_change_tokens()
    world.dynamics.update_record("new_project", index, new_name="Renamed")

    assert run_custom_objects(services, "T1", world.connection.id) == "done"

    assert [p["newName"] for p in world.marketo.custom_objects.records("dynNewProject")
            if p["dynNewProjectId"] == linked] == ["Renamed"]
    assert world.store.delta_links.get("T1", world.connection.id, "new_project") not in (None, expired)
    world.dynamics.update_record("new_project", index, new_name="Followed")
    assert run_custom_objects(services, "T1", world.connection.id) == "done"
    assert [p["newName"] for p in world.marketo.custom_objects.records("dynNewProject")
            if p["dynNewProjectId"] == linked] == ["Followed"]


def test_one_custom_tables_job_runs_at_a_time(world: SyncHarness) -> None:
    """Several paths enqueue the job; while one holds the connection's custom-tables lease another
    does nothing (and writes nothing) instead of upserting the same records twice."""
    run = runs.start_initial_sync(world.store, world.container.queue, world.connection)
    SimpleWorker([world.container.queue], connection=world.store.redis).work(burst=True)
    assert world.store.get_run("T1", run.id).status == RunStatus.finished
    held = world.store.sync_lease("T1", world.connection.id, "custom-objects", 60, owner="another job")
    assert held.take()
    before = len(world.marketo.calls())
    try:
        assert run_custom_objects(world.container.sync, "T1", world.connection.id) == "busy"
        assert len(world.marketo.calls()) == before
    finally:
        held.release()
    assert run_custom_objects(world.container.sync, "T1", world.connection.id) == "done"
