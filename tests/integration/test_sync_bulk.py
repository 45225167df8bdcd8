"""The initial sync through Marketo's Bulk Import, end to end over loopback: Dynamics emulator → RQ worker
→ Marketo emulator's import queue, with the REST path kept for the entity under the threshold."""

from __future__ import annotations

import csv
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from rq import SimpleWorker

from bot.models import Entity, RunStatus
from bot.sync import entry, runs
from bot.sync.bulk import STALE_PARTS_SECONDS, parts_dir
from bot.sync.checkpoint import RunState
from bot.sync.report import failure_csv_file
from sandbox.polling import wait_for
from tests.conftest import REDIS_URL
from tests.integration.sync_harness import WRITE_PATHS, SyncHarness

BULK_PATH = "/bulk/v1/leads.json"


@pytest.fixture
def world(key_prefix: str) -> Iterator[SyncHarness]:
    harness = SyncHarness(REDIS_URL, key_prefix, {"lead": 2000, "contact": 600},
                          marketo={"calls_per_window": 100, "window_seconds": 2, "import_rate": 20_000},
                          settings={"BULK_IMPORT_MIN_RECORDS": 1000, "BULK_IMPORT_POLL_SECONDS": 0.05,
                                    "BULK_IMPORT_PART_BYTES": 60_000}).start()
    entry.install(harness.container.sync)
    yield harness
    entry.install(None)
    harness.stop()


def test_large_entity_goes_through_bulk_import_exactly_and_the_small_one_through_rest(world: SyncHarness) -> None:
    world.dynamics.update_record("lead", 5, emailaddress1="zoë@exämple.com", new_synctomkto=True)
    run = runs.start_initial_sync(world.store, world.container.queue, world.connection,
                                  notifier=world.container.notifier)
    SimpleWorker([world.container.queue], connection=world.store.redis).work(burst=True)
    run = world.store.get_run("T1", run.id)
    assert run.status == RunStatus.finished
    leads, contacts = (next(p for p in run.entities if p.entity == e) for e in (Entity.lead, Entity.contact))
    expected = len(world.expected(Entity.lead))
    assert leads.imported + leads.skipped == expected and leads.skipped == 1 and leads.read == 2000
    assert leads.created == leads.updated == 0 and contacts.imported == 0  # contacts: under the threshold
    assert world.mismatches(Entity.contact) == []
    problems = world.mismatches(Entity.lead)
    assert len(problems) == 1 and "persons in Marketo" in problems[0]  # only the refused person is missing

    jobs = world.marketo.import_jobs()
    state = RunState(world.store, "T1", run.id)
    assert len(jobs) == leads.parts_done == leads.parts_uploaded >= 3 and state.load(Entity.lead).imports == {}
    assert sum(job["numOfLeadsProcessed"] for job in jobs) == expected
    polls = [c for c in world.marketo.calls() if c.path.startswith("/bulk/v1/leads/batch/")]
    assert len(polls) <= 3 * len(jobs)  # status polls (and the one failures file) stay few per part
    uploads = [c for c in world.marketo.calls(BULK_PATH) if c.admitted]
    assert len(uploads) == len(jobs) and max(c.body_bytes for c in uploads) < 61_000
    assert [c for c in world.marketo.calls("/rest/v1/leads.json") if c.method == "POST"]  # the contacts
    assert run.api_calls == len([c for c in world.marketo.calls() if c.admitted])
    assert world.store.bulk_import_slots().held() == 0

    skip = next(entry for entry in state.ledger if entry.entity == "lead")
    assert skip.id == world.dynamics.record_id("lead", 5) and "Invalid email" in skip.message
    path, rows = failure_csv_file(world.store, "T1", run.id)
    try:
        with open(path, encoding="utf-8") as report:
            assert any(row[0] == skip.id for row in csv.reader(report)) and rows >= 1
    finally:
        os.unlink(path)


def test_an_import_marketo_fails_as_a_whole_lists_every_record_of_its_part(world: SyncHarness) -> None:
    world.marketo.fail_next_import("Import failed: system error")
    run = runs.start_initial_sync(world.store, world.container.queue, world.connection)
    SimpleWorker([world.container.queue], connection=world.store.redis).work(burst=True)
    run = world.store.get_run("T1", run.id)
    assert run.status == RunStatus.finished
    leads = next(p for p in run.entities if p.entity == Entity.lead)
    first = world.marketo.import_jobs()[0]
    assert first["status"] == "Failed" and first["numOfLeadsProcessed"] == 0
    failed = [e for e in RunState(world.store, "T1", run.id).ledger if e.entity == "lead"]
    assert len(failed) == leads.failed > 0 and all("system error" in e.message and e.id for e in failed)
    assert leads.imported + leads.failed == len(world.expected(Entity.lead))
    id_field = world.connection.plan.for_entity(Entity.lead).id_field
    assert len([row for row in world.marketo.leads() if row.get(id_field)]) == leads.imported  # none of the failed part


def test_parts_a_dead_worker_left_are_removed_and_a_run_leaves_none(world: SyncHarness) -> None:
    run = runs.start_initial_sync(world.store, world.container.queue, world.connection)
    earlier = Path(parts_dir(run.id)) / "lead-0"  # as an attempt SIGKILLed mid-import leaves it
    stale, live = Path(parts_dir(f"{run.id}-stale")), Path(parts_dir(f"{run.id}-live"))  # other runs' parts
    for directory in (earlier, stale / "lead-1", live / "lead-1"):
        directory.mkdir(parents=True)
        (directory / "3.csv").write_text("dynamicsLeadId\nx\n")
    old = time.time() - STALE_PARTS_SECONDS - 60
    os.utime(stale, (old, old))
    try:
        SimpleWorker([world.container.queue], connection=world.store.redis).work(burst=True)
        assert world.store.get_run("T1", run.id).status == RunStatus.finished
        assert not Path(parts_dir(run.id)).exists() and not stale.exists()
        assert (live / "lead-1" / "3.csv").exists()  # a run written in lately may be running elsewhere
    finally:
        for directory in (Path(parts_dir(run.id)), stale, live):
            shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def slow_imports(key_prefix: str) -> Iterator[SyncHarness]:
    """Imports of about 500 rows at 400 rows/s in a worker process: a cancel finds them in Marketo's queue."""
    marketo, settings = WRITE_PATHS["bulk"]
    harness = SyncHarness(REDIS_URL, key_prefix, {"lead": 6000}, marketo=marketo, settings=settings).start()
    yield harness
    harness.stop()


def test_a_cancelled_run_releases_its_import_slots_at_once(slow_imports: SyncHarness) -> None:
    world = slow_imports
    slots = world.store.bulk_import_slots()
    other = slots.holder("T1", "another-run", "lead", 0)
    assert slots.take(other, 10, 300)
    world.spawn_worker()
    run = runs.start_initial_sync(world.store, world.container.queue, world.connection)
    wait_for(lambda: slots.held() >= 3, "imports of the run in Marketo's queue", timeout=60)
    idle = slots.holder("T1", run.id, "contact", 0)  # as a paused entity's dead job left it
    assert slots.take(idle, 10, 300, force=True)

    runs.request_cancel(world.store, "T1", run.id)
    cancelled = world.wait_run(run.id, lambda r: r.status != RunStatus.running, timeout=60)
    assert cancelled.status == RunStatus.cancelled
    assert slots.held() == 1  # at once, not after their lease of 300 s: only the other run's is left
    assert slots.release_run("T1", "another-run") == 1
    assert not os.path.exists(parts_dir(run.id))
