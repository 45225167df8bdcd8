"""Two separate processes upserting at once through one shared limiter never exceed Marketo's
window or concurrency cap, as the emulator counts them.

Run as a script, this module is the worker process: `python test_marketo_two_process.py
<marketo url> <redis url> <key prefix> <first index> <count>`.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from bot.marketo.client import MarketoClient
from bot.marketo.limiter import SharedLimiter
from bot.models import MarketoField
from bot.store import Keys, LimiterState
from sandbox.marketo import MarketoEmulator

CALLS, WINDOW, CONCURRENCY = 10, 1.0, 3
PER_PROCESS, BATCH, THREADS = 60, 4, 4
REPO = Path(__file__).resolve().parents[2]


def _client(url: str, limiter: SharedLimiter) -> MarketoClient:
    return MarketoClient(url, "cid", "csecret", limiter=limiter, batch_size=BATCH, max_retries=0)


def _limiter(redis_url: str, prefix: str) -> SharedLimiter:
    import redis

    return SharedLimiter(LimiterState(redis.Redis.from_url(redis_url), Keys(prefix)), CALLS, WINDOW, CONCURRENCY)


def worker(url: str, redis_url: str, key: str, first: int, count: int) -> int:
    """Upsert `count` leads from several threads; returns how many were created."""
    records = [{"dynamicsLeadId": f"guid-{i}", "email": f"p{i}@example.com"} for i in range(first, first + count)]
    chunks = [records[i:i + BATCH] for i in range(0, len(records), BATCH)]
    with _client(url, _limiter(redis_url, key)) as marketo, ThreadPoolExecutor(THREADS) as pool:
        outcomes = pool.map(lambda chunk: marketo.sync_leads(chunk, "dynamicsLeadId"), chunks)
        return sum(r.status == "created" for results in outcomes for r in results)


@pytest.fixture
def emulator() -> Iterator[MarketoEmulator]:
    started = MarketoEmulator(client_id="cid", client_secret="csecret", calls_per_window=CALLS,
                              window_seconds=WINDOW, max_concurrency=CONCURRENCY, latency=0.03).start()
    yield started
    started.stop()


@pytest.mark.e2e
def test_two_processes_share_the_limits(emulator, redis_client, key_prefix) -> None:
    from tests.conftest import REDIS_URL

    key = key_prefix
    with _client(emulator.url, _limiter(REDIS_URL, key)) as setup:
        setup.create_lead_fields([MarketoField(name="dynamicsLeadId", display_name="Dynamics Lead Id",
                                               data_type="string")])
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    processes = [
        subprocess.Popen([sys.executable, __file__, emulator.url, REDIS_URL, key, str(first), str(PER_PROCESS)],
                         cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for first in (0, PER_PROCESS)
    ]
    outputs = [p.communicate(timeout=120) for p in processes]
    assert [p.returncode for p in processes] == [0, 0], [err for _, err in outputs]
    reports = [[float(v) for v in out.split()] for out, _ in outputs]  # created, started, finished
    assert [int(created) for created, _, _ in reports] == [PER_PROCESS, PER_PROCESS]
    (_, start_a, end_a), (_, start_b, end_b) = reports
    assert start_a < end_b and start_b < end_a  # the two processes really ran at the same time

    lead_calls = emulator.calls("/rest/v1/leads.json")
    assert len(lead_calls) == 2 * PER_PROCESS // BATCH
    assert not [c for c in emulator.calls() if c.code in {"606", "615"}]
    assert emulator.max_calls_in_any_window <= CALLS
    assert emulator.max_concurrent_seen <= CONCURRENCY
    assert emulator.max_calls_in_any_window == CALLS  # the window was actually saturated
    assert emulator.max_concurrent_seen >= 2  # and calls really ran in parallel
    assert emulator.lead_count() == 2 * PER_PROCESS


if __name__ == "__main__":
    url_arg, redis_arg, key_arg, first_arg, count_arg = sys.argv[1:6]
    began = time.time()
    created = worker(url_arg, redis_arg, key_arg, int(first_arg), int(count_arg))
    print(created, began, time.time())
