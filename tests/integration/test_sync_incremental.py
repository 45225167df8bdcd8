"""Incremental sync from Dataverse change tracking, after a real initial sync over loopback."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from rq import SimpleWorker

from bot.models import Entity, RunStatus
from bot.sync import incremental
from tests.integration.sync_harness import SyncHarness, synced_world


@pytest.fixture
def world(key_prefix: str) -> Iterator[SyncHarness]:
    yield from synced_world(key_prefix, {"lead": 200, "contact": 100})


@pytest.fixture
def untracked_world(key_prefix: str) -> Iterator[SyncHarness]:
    """Leads without change tracking (the emulator refuses `odata.track-changes` for them), contacts with."""
    yield from synced_world(key_prefix, {"lead": 200, "contact": 100}, untracked_entities={"lead"})


def test_changes_creates_and_deletes_reach_marketo(world: SyncHarness) -> None:
    lead_id = world.dynamics.record_id("lead", 3)
    deleted_id = world.dynamics.record_id("lead", 4)
    world.dynamics.update_record("lead", 3, firstname="Renamed")
    world.dynamics.delete_record("lead", 4)
    new = world.dynamics.create_records("lead", 5)
    before = world.store.delta_links.get("T1", world.connection.id, Entity.lead.value)

    assert incremental.run_incremental(world.container.sync, "T1", world.connection.id, Entity.lead) == "done"
    assert world.marketo.lead_by("dynamicsLeadId", lead_id)["firstName"] == "Renamed"
    deleted = world.marketo.lead_by("dynamicsLeadId", deleted_id)
    assert deleted is not None and deleted["dynamicsDeleted"] is True  # marked, never deleted
    for index in new:
        assert world.marketo.lead_by("dynamicsLeadId", world.dynamics.record_id("lead", index)) is not None
    after = world.store.delta_links.get("T1", world.connection.id, Entity.lead.value)
    assert after and after != before
    stats = world.store.incremental.stats("T1", world.connection.id)
    assert int(stats["lead:read"]) == 6  # five created + one updated (the delete arrives separately)

    # Nothing changed since: a second pass writes nothing.
    calls = len(world.marketo.calls("/rest/v1/leads.json"))
    assert incremental.run_incremental(world.container.sync, "T1", world.connection.id, Entity.lead) == "done"
    assert len(world.marketo.calls("/rest/v1/leads.json")) == calls


def test_a_finished_initial_sync_is_scheduled_and_due_jobs_run(world: SyncHarness) -> None:
    due = world.store.incremental.due_at("T1", world.connection.id)
    minutes = world.settings.INCREMENTAL_SYNC_MINUTES
    assert due == pytest.approx(time.time() + minutes * 60, abs=60)
    assert incremental.schedule_due(world.store, world.container.queue, world.settings, now=due - 1) == []
    enqueued = incremental.schedule_due(world.store, world.container.queue, world.settings, now=due + 1)
    assert len(enqueued) == 3  # one per entity, and the connection's Marketo → Dynamics write-back
    assert incremental.schedule_due(world.store, world.container.queue, world.settings, now=due + 1) == []
    world.dynamics.update_record("contact", 1, firstname="Later")
    SimpleWorker([world.container.queue], connection=world.store.redis).work(burst=True)
    contact = world.marketo.lead_by("dynamicsContactId", world.dynamics.record_id("contact", 1))
    assert contact["firstName"] == "Later"


def test_an_expired_change_token_falls_back_to_a_full_reread(world: SyncHarness) -> None:
    world.dynamics.expire_change_tokens()
    world.dynamics.update_record("lead", 7, firstname="AfterExpiry")
    assert incremental.run_incremental(world.container.sync, "T1", world.connection.id, Entity.lead) == "resync"
    resync_id = world.store.get_connection("T1", world.connection.id).run_id
    SimpleWorker([world.container.queue], connection=world.store.redis).work(burst=True)
    resync = world.store.get_run("T1", resync_id)
    assert resync.kind == "resync" and resync.status == RunStatus.finished
    assert [p.entity for p in resync.entities] == [Entity.lead]
    assert world.marketo.lead_by("dynamicsLeadId", world.dynamics.record_id("lead", 7))["firstName"] == "AfterExpiry"
    assert world.store.delta_links.get("T1", world.connection.id, Entity.lead.value)


def test_a_value_cleared_in_dynamics_is_cleared_in_marketo(world: SyncHarness) -> None:
    lead_id = world.dynamics.record_id("lead", 5)
    before = world.marketo.lead_by("dynamicsLeadId", lead_id)
    assert before["phone"] and before["unsubscribed"] is not None  # the initial sync wrote both

    world.dynamics.update_record("lead", 5, telephone1=None, donotbulkemail=None)
    assert incremental.run_incremental(world.container.sync, "T1", world.connection.id, Entity.lead) == "done"
    after = world.marketo.lead_by("dynamicsLeadId", lead_id)
    assert after["phone"] is None  # cleared
    assert after["unsubscribed"] == before["unsubscribed"]  # a boolean has no empty value: kept
    assert after["firstName"] == before["firstName"]


def test_a_table_without_change_tracking_is_synced_by_modifiedon(untracked_world: SyncHarness) -> None:
    world = untracked_world
    plans = world.connection.plan
    assert not plans.for_entity(Entity.lead).change_tracking and plans.for_entity(Entity.contact).change_tracking
    assert world.store.delta_links.get("T1", world.connection.id, Entity.lead.value) is None
    assert world.mismatches(Entity.lead) == []  # the initial load read every lead without change tracking
    modified, unmodified = (world.dynamics.record_id("lead", i) for i in (3, 4))
    untouched = world.marketo.lead_by("dynamicsLeadId", unmodified)
    world.dynamics.update_record("lead", 3, firstname="Watermarked", telephone1=None)

    assert incremental.run_incremental(world.container.sync, "T1", world.connection.id, Entity.lead) == "done"
    lead = world.marketo.lead_by("dynamicsLeadId", modified)
    assert lead["firstName"] == "Watermarked" and lead["phone"] is None
    assert world.marketo.lead_by("dynamicsLeadId", unmodified)["updatedAt"] == untouched["updatedAt"]
    assert int(world.store.incremental.stats("T1", world.connection.id)["lead:read"]) == 1  # only the modified one
    mark = world.store.watermarks.get("T1", world.connection.id, Entity.lead.value)
    assert mark is not None and mark.ids == [modified]

    # Nothing modified since: a second cycle writes nothing.
    calls = len(world.marketo.calls("/rest/v1/leads.json"))
    assert incremental.run_incremental(world.container.sync, "T1", world.connection.id, Entity.lead) == "done"
    assert len(world.marketo.calls("/rest/v1/leads.json")) == calls

    world.dynamics.update_record("lead", 4, firstname="Later")
    assert incremental.run_incremental(world.container.sync, "T1", world.connection.id, Entity.lead) == "done"
    assert world.marketo.lead_by("dynamicsLeadId", unmodified)["firstName"] == "Later"
    assert int(world.store.incremental.stats("T1", world.connection.id)["lead:read"]) == 2
