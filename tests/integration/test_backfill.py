"""The backfill of a field added after go-live, after a real initial sync over loopback: update-only
writes of the added column, its own lease (the incremental cycles go on), the offered delta link."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from rq import SimpleWorker

from bot.models import Entity, RunStatus, new_id
from bot.sync import incremental
from bot.sync.backfill import start_backfill
from bot.sync.checkpoint import BACKFILL, lease_part
from bot.sync.mapping import build_plan
from tests.integration.sync_harness import SyncHarness, synced_world

ADDED = "new_extra001"


@pytest.fixture
def world(key_prefix: str) -> Iterator[SyncHarness]:
    yield from synced_world(key_prefix, {"lead": 80}, extra_attributes={"lead": 1})


def _add_field(world: SyncHarness) -> str:
    """The connection switched to a plan with ADDED (as an approved change does); its Marketo name."""
    connection = world.store.get_connection("T1", world.connection.id)
    with world.container.dataverse("T1", connection.id) as client:
        metadata = {Entity.lead: client.entity_metadata(Entity.lead)}
    selected = [m.source for m in connection.plan.for_entity(Entity.lead).mappings] + [ADDED]
    marketo = world.container.marketo()
    plan = build_plan(metadata, {Entity.lead: selected}, {f.name for f in marketo.list_lead_fields()})
    marketo.create_lead_fields(plan.fields_to_create)
    world.store.update_connection("T1", connection.id, lambda c: c.model_copy(update={"plan": plan}))
    return next(m.marketo_name for m in plan.for_entity(Entity.lead).mappings if m.source == ADDED)


def test_the_backfill_writes_the_added_column_and_creates_no_one(world: SyncHarness) -> None:
    name = _add_field(world)
    gone = world.dynamics.record_id("lead", 2)
    world.marketo.delete_by_person(world.marketo.lead_by("dynamicsLeadId", gone)["id"])
    persons = world.marketo.lead_count()
    connection = world.store.get_connection("T1", world.connection.id)
    run_id = new_id()
    world.store.update_connection("T1", connection.id, lambda c: c.model_copy(update={"backfill_run_id": run_id}))
    old_link = world.store.delta_links.get("T1", connection.id, Entity.lead.value)

    # While the backfill holds its own lease, an incremental cycle is not kept waiting.
    lease = world.store.sync_lease("T1", connection.id, lease_part(BACKFILL, Entity.lead), 5, owner="backfill")
    assert lease.take()
    world.dynamics.update_record("lead", 5, firstname="DuringBackfill")
    assert incremental.run_incremental(world.container.sync, "T1", connection.id, Entity.lead) == "done"
    assert world.marketo.lead_by("dynamicsLeadId", world.dynamics.record_id("lead", 5))["firstName"] == "DuringBackfill"
    lease.release()

    start_backfill(world.store, world.container.queue, world.store.get_connection("T1", connection.id),
                   {"lead": [ADDED]}, "U0REQ", run_id)
    SimpleWorker([world.container.queue], connection=world.store.redis).work(burst=True)
    run = world.store.get_run("T1", run_id)
    assert run.status == RunStatus.finished and run.kind == BACKFILL
    progress = run.entities[0]
    assert progress.created == 0 and progress.skipped == 1  # the person deleted in Marketo is not re-created
    assert world.marketo.lead_count() == persons and world.marketo.lead_by("dynamicsLeadId", gone) is None
    expected = {r["leadid"]: r[ADDED] for r in world.dynamics.expected_records("lead", [ADDED])}
    assert all(world.marketo.lead_by("dynamicsLeadId", i)[name] == v for i, v in expected.items() if i != gone)
    assert world.store.get_connection("T1", connection.id).state.value == "synced"  # the connection stayed

    offered = world.store.delta_links.offered("T1", connection.id, Entity.lead.value)
    assert offered and ADDED in offered and world.store.delta_links.get("T1", connection.id, "lead") != offered
    world.dynamics.update_record("lead", 6, **{ADDED: "after"})
    assert incremental.run_incremental(world.container.sync, "T1", connection.id, Entity.lead) == "done"
    assert world.store.delta_links.get("T1", connection.id, Entity.lead.value) == offered  # switched
    assert world.store.delta_links.get("T1", connection.id, Entity.lead.value) != old_link
    assert incremental.run_incremental(world.container.sync, "T1", connection.id, Entity.lead) == "done"
    assert world.marketo.lead_by("dynamicsLeadId", world.dynamics.record_id("lead", 6))[name] == "after"
