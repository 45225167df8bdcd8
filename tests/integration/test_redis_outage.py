"""Redis goes away mid-sync and comes back: the worker process lives on and the run ends exact.

Redis is a server of the test's own (`tests/support/redis_server.py`) that keeps its data across a
restart; it is stopped while a real `python -m bot.worker` is writing, until the worker has met the
outage (redis-py gave up and raised), then started again on the same port.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.models import Entity, RunStatus
from bot.sync import runs
from bot.sync.checkpoint import RunState
from tests.integration.sync_harness import SyncHarness
from tests.support.redis_server import RedisServer

pytestmark = pytest.mark.e2e


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    try:
        server = RedisServer(tmp_path).start()
    except FileNotFoundError:
        pytest.skip("redis-server is not on PATH (CI installs it): this test needs a Redis it can stop and restart")
    yield server
    server.stop()


@pytest.fixture
def world(own_redis: RedisServer, key_prefix: str) -> Iterator[SyncHarness]:
    harness = SyncHarness(own_redis.url, key_prefix, {"lead": 2400, "contact": 900},
                          marketo={"calls_per_window": 10, "window_seconds": 2},
                          settings={"MARKETO_MAX_CONCURRENCY": 4, "SYNC_WRITERS": 2}).start()
    yield harness
    harness.stop()


def _until_it_waits_for_redis(worker: subprocess.Popen, log: Path, timeout: float = 60) -> str:
    """Poll the worker's log until it has waited for Redis twice (backing off); its output so far."""
    deadline = time.monotonic() + timeout
    while worker.poll() is None and "retrying in 1.0 s" not in log.read_text(errors="replace"):
        assert time.monotonic() < deadline, "timed out waiting for the worker to wait for Redis"
        time.sleep(0.1)
    output = log.read_text(errors="replace")
    assert worker.poll() is None, f"the worker died:\n{output[-3000:]}"
    return output


def test_a_worker_outlives_a_redis_outage_and_the_run_resumes_from_its_checkpoint(
        world: SyncHarness, own_redis: RedisServer, tmp_path: Path) -> None:
    log = tmp_path / "worker.log"
    worker = world.spawn_worker(str(log))
    run = runs.start_initial_sync(world.store, world.container.queue, world.connection)
    expected_leads = len(world.expected(Entity.lead))

    def leads_written() -> int:
        return next(p for p in world.store.get_run("T1", run.id).entities if p.entity == Entity.lead).written

    world.wait_run(run.id, lambda r: leads_written() > 0.2 * expected_leads, timeout=60)
    own_redis.stop()
    assert "Redis became unreachable during job" in _until_it_waits_for_redis(worker, log)
    own_redis.start()

    finished = world.wait_run(run.id, lambda r: r.status != RunStatus.running, timeout=120)
    output = log.read_text(errors="replace")
    assert worker.poll() is None, output[-3000:]
    assert "quitting" not in output
    assert finished.status == RunStatus.finished, output[-3000:]
    assert world.mismatches(Entity.lead) == [] and world.mismatches(Entity.contact) == []
    for progress in finished.entities:
        assert progress.written == len(world.expected(progress.entity)) and progress.failed == 0
    assert RunState(world.store, "T1", run.id).load(Entity.lead).attempts == 2  # resumed once, from its checkpoint


def test_a_worker_started_while_redis_is_down_waits_for_it_then_resumes_the_run(
        world: SyncHarness, own_redis: RedisServer, tmp_path: Path) -> None:
    run = runs.start_initial_sync(world.store, world.container.queue, world.connection)  # no worker alive yet
    own_redis.stop()
    log = tmp_path / "worker.log"
    worker = world.spawn_worker(str(log))
    _until_it_waits_for_redis(worker, log)
    own_redis.start()

    finished = world.wait_run(run.id, lambda r: r.status != RunStatus.running, timeout=120)
    assert finished.status == RunStatus.finished and worker.poll() is None
    assert world.mismatches(Entity.lead) == [] and world.mismatches(Entity.contact) == []
