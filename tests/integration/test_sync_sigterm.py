"""SIGTERM a worker mid-sync: it stops the entity at a batch boundary, hands it over and exits within
seconds; another worker continues at once (long before the lease would lapse) and the sync ends exact.

Workers are real `python -m bot.worker` subprocesses; the victim gets a plain SIGTERM, as an orchestrator sends.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator

import pytest
from rq import Worker

from bot.models import Entity, RunStatus
from bot.sync import runs
from bot.sync.checkpoint import RunState
from tests.conftest import REDIS_URL
from tests.integration.sync_harness import WRITE_PATHS, SyncHarness, imports_stalled

pytestmark = pytest.mark.e2e
LEASE_SECONDS = 60


# REST: 5 calls/s of 300 records: about 3 s for the leads, time to stop a worker in the middle (on either
# path of `WRITE_PATHS`). The lease is long: a hand-over that waited for it
# (as after a SIGKILL) would miss every deadline below.


@pytest.fixture(params=sorted(WRITE_PATHS))
def world(request: pytest.FixtureRequest, key_prefix: str) -> Iterator[SyncHarness]:
    marketo, settings = WRITE_PATHS[request.param]
    harness = SyncHarness(REDIS_URL, key_prefix, {"lead": 4200},
                          marketo={"calls_per_window": 10, "window_seconds": 2, **marketo},
                          settings={"MARKETO_MAX_CONCURRENCY": 4, "SYNC_WRITERS": 2,
                                    "SYNC_LEASE_SECONDS": LEASE_SECONDS, **settings}).start()
    harness.path = request.param
    yield harness
    harness.stop()


def test_sigterm_mid_sync_hands_the_entity_over_at_a_batch_boundary(world: SyncHarness) -> None:
    workers = [world.spawn_worker(), world.spawn_worker()]
    run = runs.start_initial_sync(world.store, world.container.queue, world.connection)
    expected = len(world.expected(Entity.lead))
    state = RunState(world.store, "T1", run.id)

    def written() -> int:
        return next(p for p in world.store.get_run("T1", run.id).entities if p.entity == Entity.lead).written

    world.wait_run(run.id, lambda r: 0.2 * expected < written(), timeout=60)
    with imports_stalled(world):  # on the Bulk path, stopped while imports wait in Marketo's queue
        world.wait_run(run.id, lambda r: world.path == "rest" or bool(state.load(Entity.lead).imports), timeout=60)
        first_job = state.load(Entity.lead).job_id
        busy = {w.pid: w.get_current_job_id() for w in Worker.all(queue=world.container.queue)}
        victim = next(p for p in workers if busy.get(p.pid) == first_job)
        other = next(p for p in workers if p is not victim)

        stopped_at = time.monotonic()
        os.kill(victim.pid, signal.SIGTERM)
        assert victim.wait(timeout=10) == 0  # a warm shutdown within seconds, not after the whole entity
        ckpt = state.load(Entity.lead)
        assert ckpt.job_id != first_job and ckpt.attempts == 2  # a fresh job, enqueued by the stopping worker
        left_in_queue = ckpt.imports

    finished = world.wait_run(run.id, lambda r: r.status != RunStatus.running, timeout=LEASE_SECONDS)
    # the other worker took the entity at once: had it waited for the lease to lapse, 60 s would have passed
    assert time.monotonic() - stopped_at < LEASE_SECONDS / 4
    assert finished.status == RunStatus.finished
    assert other.poll() is None
    assert world.mismatches(Entity.lead) == []
    assert written() == expected
    ckpt = state.load(Entity.lead)
    # every batch the stopping worker sent was booked before it let go: nothing was in flight to resend
    assert ckpt.rewritten_batches == 0 and ckpt.rewritten_records == 0
    if world.path == "rest":
        writes = [c for c in world.marketo.calls("/rest/v1/leads.json") if c.admitted and c.method == "POST"]
        assert len(writes) == -(-expected // 300)
        return
    # Bulk Import: the imports in the queue when the worker stopped were polled by the next job, not resent
    lead = next(p for p in finished.entities if p.entity == Entity.lead)
    assert left_in_queue and {m.batch_id for m in left_in_queue.values()} <= {j["batchId"] for j in world.marketo.import_jobs()}
    assert len(world.marketo.import_jobs()) == lead.parts_done == lead.parts_uploaded and ckpt.imports == {}
