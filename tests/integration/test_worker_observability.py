"""A real worker under `LOG_FORMAT=json` with a metrics port: after a sync its port shows the records
booked per entity and the Marketo calls, and every line it logged is JSON, the sync's carrying its ids."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot.models import Entity, RunStatus
from bot.sync import runs
from sandbox.polling import wait_for
from sandbox.server import free_port
from tests.conftest import REDIS_URL
from tests.integration.sync_harness import SyncHarness

pytestmark = pytest.mark.e2e


@pytest.fixture
def port() -> int:
    return free_port()


@pytest.fixture
def world(key_prefix: str, port: int) -> Iterator[SyncHarness]:
    harness = SyncHarness(REDIS_URL, key_prefix, {"lead": 300, "contact": 200},
                          settings={"LOG_FORMAT": "json", "METRICS_PORT": port}).start()
    yield harness
    harness.stop()


def scrape(port: int) -> dict[tuple[str, tuple], float]:
    text = httpx.get(f"http://127.0.0.1:{port}/metrics").text
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def records(samples: dict, entity: str, outcome: str) -> float:
    return samples.get(("sync_records_total", (("entity", entity), ("outcome", outcome))), 0.0)


def test_worker_metrics_and_json_logs_after_a_sync(world: SyncHarness, port: int, tmp_path: Path) -> None:
    log_path = tmp_path / "worker.log"
    world.spawn_worker(str(log_path))
    wait_for(lambda: _answers(port), what="the worker's metrics port")
    run = runs.start_initial_sync(world.store, world.container.queue, world.connection)
    finished = world.wait_run(run.id, lambda r: r.status != RunStatus.running, timeout=120)
    assert finished.status == RunStatus.finished

    # the last job returns just after it booked the run's end
    samples = wait_for(lambda: (s := scrape(port))[("sync_jobs_running", (("kind", "initial"),))] == 0 and s,
                       what="no sync job running")
    for progress in finished.entities:
        entity = progress.entity.value
        assert records(samples, entity, "read") == progress.read
        assert records(samples, entity, "written") == progress.created + progress.updated > 0
        assert records(samples, entity, "failed") == progress.skipped + progress.failed
    ok_calls = samples[("marketo_calls_total", (("outcome", "ok"),))]
    assert ok_calls >= finished.api_calls > 0
    assert samples[("sync_queue_depth", ())] == 0
    assert samples[("marketo_quota_left", ())] <= world.settings.MARKETO_DAILY_QUOTA - finished.api_calls

    lines = [json.loads(line) for line in log_path.read_text().splitlines() if line.strip()]
    assert lines and all({"time", "level", "logger", "message"} <= set(line) for line in lines)
    for entity in (Entity.lead, Entity.contact):
        mine = [line for line in lines if line.get("run_id") == run.id and line.get("entity") == entity.value]
        assert all(line["team_id"] == "T1" for line in mine)
        messages = [line["message"] for line in mine]
        assert f"sync {entity.value}: reading from batch 0" in messages  # from the engine's reader thread
        assert f"sync of {entity.value} ended: done" in messages
    assert "emulator-secret" not in log_path.read_text()


def _answers(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False
