"""SIGKILL a worker mid-sync: the sync resumes from its checkpoint with no human action and ends exact.

Workers are real `python -m bot.worker` subprocesses; each is killed with its whole process group.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from rq import Worker

from bot.models import Entity, RunStatus
from bot.sync import runs
from bot.sync.bulk import parts_dir
from bot.sync.checkpoint import RunState
from tests.conftest import REDIS_URL
from tests.integration.sync_harness import WRITE_PATHS, SyncHarness, imports_stalled

pytestmark = pytest.mark.e2e
LEADS_PATH = "/rest/v1/leads.json"


# REST: 5 calls/s, 2 writers per entity: 12 batches of leads and 3 of contacts share them, slow enough to
# kill mid-run, and at most 2 batches in flight per entity. The cap of 4 leaves the others slots while the dead worker's expire (the limiter's lease).
# On the Bulk Import path (`WRITE_PATHS`) the kill lands mid-import.


@pytest.fixture(params=sorted(WRITE_PATHS))
def world(request: pytest.FixtureRequest, key_prefix: str) -> Iterator[SyncHarness]:
    marketo, settings = WRITE_PATHS[request.param]
    harness = SyncHarness(REDIS_URL, key_prefix, {"lead": 3600, "contact": 900},
                          marketo={"calls_per_window": 10, "window_seconds": 2, **marketo},
                          settings={"MARKETO_MAX_CONCURRENCY": 4, "SYNC_WRITERS": 2, **settings}).start()
    harness.path = request.param
    yield harness
    harness.stop()


def lead_progress(world: SyncHarness, run_id: str):
    return next(p for p in world.store.get_run("T1", run_id).entities if p.entity == Entity.lead)


def test_sigkilled_worker_resumes_from_checkpoint_and_ends_exact(world: SyncHarness) -> None:
    workers = [world.spawn_worker(), world.spawn_worker()]
    run = runs.start_initial_sync(world.store, world.container.queue, world.connection)
    expected_leads = len(world.expected(Entity.lead))
    state = RunState(world.store, "T1", run.id)
    world.wait_run(run.id, lambda r: 0.25 * expected_leads < lead_progress(world, run.id).written, timeout=60)
    with imports_stalled(world):  # on the Bulk path, killed while imports wait in Marketo's queue
        world.wait_run(run.id, lambda r: world.path == "rest" or bool(state.load(Entity.lead).imports), timeout=60)
        lead_job = state.load(Entity.lead).job_id
        busy = {w.pid: w.get_current_job_id() for w in Worker.all(queue=world.container.queue)}
        victim = next(p for p in workers if busy.get(p.pid) == lead_job)
        world.kill(victim)
        killed_at = lead_progress(world, run.id).written
        left_in_queue = state.load(Entity.lead).imports
    assert killed_at < expected_leads
    world.spawn_worker()  # the supervisor's replacement; the sweeper on any worker revives the job

    finished = world.wait_run(run.id, lambda r: r.status != RunStatus.running, timeout=120)
    assert finished.status == RunStatus.finished
    assert world.mismatches(Entity.lead) == [] and world.mismatches(Entity.contact) == []
    for progress in finished.entities:
        assert progress.written == len(world.expected(progress.entity))
    ckpt = state.load(Entity.lead)
    assert ckpt.attempts == 2
    if world.path == "rest":
        assert ckpt.rewritten_batches <= 2 and ckpt.rewritten_records <= 600
        # Each batch is one call of ≤ 300 records; any admitted call beyond those was a batch written twice.
        writes = [c for c in world.marketo.calls(LEADS_PATH) if c.admitted and c.method == "POST"]
        batches = sum(-(-len(world.expected(e)) // 300) for e in (Entity.lead, Entity.contact))
        assert batches <= len(writes) <= batches + 2
        return
    # Bulk Import: the imports the dead worker left in the queue were polled, not uploaded again; only a
    # part whose upload it had not booked yet can have gone twice, and it is counted (as sent again even
    # when the worker died before its upload reached Marketo: then it went once).
    assert left_in_queue and ckpt.imports == {} and ckpt.rewritten_batches <= 1
    parts = sum(p.parts_done for p in finished.entities)
    jobs = world.marketo.import_jobs()
    assert parts <= len(jobs) <= parts + ckpt.rewritten_batches
    assert {mark.batch_id for mark in left_in_queue.values()} <= {job["batchId"] for job in jobs}
    records = sum(len(world.expected(e)) for e in (Entity.lead, Entity.contact))
    assert records <= sum(job["numOfLeadsProcessed"] for job in jobs) <= records + ckpt.rewritten_records
    assert not [c for c in world.marketo.calls(LEADS_PATH) if c.method == "POST"]
    assert world.store.bulk_import_slots().held() == 0
    assert not os.path.exists(parts_dir(run.id))  # the resumed job removed the dead one's parts
