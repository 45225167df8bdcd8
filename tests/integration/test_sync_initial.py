"""The initial sync end to end over loopback: Dynamics emulator → RQ worker → Marketo emulator."""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Iterator

import pytest
from rq import SimpleWorker

from bot.dynamics.client import DataverseClient
from bot.models import Entity, RunStatus
from bot.sync import entry, runs
from bot.sync.checkpoint import RunState
from tests.conftest import REDIS_URL
from tests.integration.sync_harness import CHANNEL, SyncHarness


@pytest.fixture
def world(key_prefix: str) -> Iterator[SyncHarness]:
    harness = SyncHarness(REDIS_URL, key_prefix, {"lead": 2000, "contact": 1000},
                          marketo={"calls_per_window": 100, "window_seconds": 2}).start()
    context = harness.container.sync
    entry.install(context)
    yield harness
    entry.install(None)
    harness.stop()


def work(world: SyncHarness) -> None:
    SimpleWorker([world.container.queue], connection=world.store.redis).work(burst=True)


def test_initial_sync_lands_exactly_the_expected_records(world: SyncHarness) -> None:
    run = runs.start_initial_sync(world.store, world.container.queue, world.connection,
                                  notifier=world.container.notifier)
    work(world)
    run = world.store.get_run("T1", run.id)
    assert run.status == RunStatus.finished
    for entity in (Entity.lead, Entity.contact):
        assert world.mismatches(entity) == []
        progress = next(p for p in run.entities if p.entity == entity)
        expected = len(world.expected(entity))
        assert progress.written == expected == progress.estimated
        assert progress.created == expected - progress.skipped - progress.failed
        assert progress.filtered_out == world.records[entity.value] - expected
    assert world.marketo.max_batch_size_seen <= 300
    assert run.api_calls == len(world.marketo.calls("/rest/v1/leads.json")) + len(
        world.marketo.calls("/rest/v1/salespersons.json"))  # the owners, upserted before their records
    summary = [m for m in world.slack.messages(CHANNEL) if "Sync finished" in m.text]
    assert len(summary) == 1


def test_daily_quota_pauses_and_resume_finishes(world: SyncHarness) -> None:
    world.marketo.fail_next(1, 607, path="/rest/v1/leads.json")
    queue = world.container.queue
    run = runs.start_initial_sync(world.store, queue, world.connection)
    work(world)
    paused = world.store.get_run("T1", run.id)
    assert paused.status == RunStatus.paused and "daily API quota" in (paused.message or "")
    runs.resume_run(world.store, queue, "T1", run.id)
    work(world)
    assert world.store.get_run("T1", run.id).status == RunStatus.finished
    assert world.mismatches(Entity.lead) == [] and world.mismatches(Entity.contact) == []


def test_skipped_records_are_kept_with_their_reason(world: SyncHarness) -> None:
    """Marketo refuses a non-ASCII email: the record shows up in the ledger (and so in the CSV)."""
    world.dynamics.update_record("lead", 5, emailaddress1="zoë@exämple.com", new_synctomkto=True)
    run = runs.start_initial_sync(world.store, world.container.queue, world.connection)
    work(world)
    skips = list(RunState(world.store, "T1", run.id).ledger)
    lead_id = world.dynamics.record_id("lead", 5)
    assert [s.id for s in skips if s.id == lead_id] == [lead_id]
    assert all(s.code == "1003" and "Invalid email" in s.message for s in skips)
    progress = next(p for p in world.store.get_run("T1", run.id).entities if p.entity == Entity.lead)
    assert progress.skipped == len([s for s in skips if s.entity == "lead"]) >= 1


def test_an_off_origin_next_link_pauses_the_run_and_writes_nothing_more(world: SyncHarness) -> None:
    def small_pages(team_id: str, connection_id: str) -> DataverseClient:
        client = world.container.dataverse(team_id, connection_id)
        client.page_size = 500
        return client

    entry.install(dataclasses.replace(entry.installed(), dataverse=small_pages))
    first_page = {r["leadid"] for r in itertools.islice(world.dynamics.expected_records("lead", ["leadid"]), 500)}
    world.dynamics.send_next_link(f"https://127.0.0.1:{world.dynamics.port}/api/data/v9.2/leads?$skiptoken=x")
    run = runs.start_initial_sync(world.store, world.container.queue, world.connection)
    work(world)
    run = world.store.get_run("T1", run.id)
    assert run.status == RunStatus.paused
    lead = next(p for p in run.entities if p.entity == Entity.lead)
    assert "next-page link" in (run.message or lead.message or "")
    written = {person["dynamicsLeadId"] for person in world.marketo.leads() if person.get("dynamicsLeadId")}
    assert written <= first_page  # at most the page read before the bad link
    world.dynamics.send_next_link(None)
    runs.resume_run(world.store, world.container.queue, "T1", run.id)
    work(world)
    assert world.store.get_run("T1", run.id).status == RunStatus.finished
    assert world.mismatches(Entity.lead) == []
