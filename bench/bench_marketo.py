"""Upsert N leads into the Marketo emulator (100 calls / 2 s, 10 concurrent) with our client and
with marketorestpython; prints `name: value` lines.

    .venv/bin/python bench/bench_marketo.py [N]        # or BENCH_N=...; default 100000 (BENCH_QUICK=1: 10000)

The ceiling is 300 records x 100 calls / 2 s = 15,000 records/s; the floor is 3.33 calls per
1000 records. Needs Redis (REDIS_URL, default redis://127.0.0.1:6379/15) for the shared limiter.
"""

from __future__ import annotations

import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import redis  # noqa: E402
from marketorestpython.client import MarketoClient as RestPythonClient  # noqa: E402

from bench.common import REDIS_URL, delete_prefix, report, run_size, unique_prefix  # noqa: E402
from bot.marketo.client import MarketoClient  # noqa: E402
from bot.marketo.limiter import SharedLimiter  # noqa: E402
from bot.models import MarketoField  # noqa: E402
from bot.store import Keys, LimiterState  # noqa: E402
from sandbox.marketo import MarketoEmulator  # noqa: E402

CALLS, WINDOW, CONCURRENCY, BATCH = 100, 2.0, 10, 300
CEILING = BATCH * CALLS / WINDOW
LEADS_PATH = "/rest/v1/leads.json"
ID_FIELD = MarketoField(name="dynamicsLeadId", display_name="Dynamics Lead Id", data_type="string")


class LocalRestPythonClient(RestPythonClient):
    """marketorestpython builds `https://{munchkin}.mktorest.com`; point its `host` at the emulator."""

    def __init__(self, base_url: str, client_id: str, client_secret: str) -> None:
        super().__init__("emulator", client_id, client_secret)
        self.host = base_url.rstrip("/")


def records(n: int) -> list[dict[str, Any]]:
    return [{"dynamicsLeadId": f"00000000-0000-0000-0000-{i:012d}", "email": f"person{i}@example.com",
             "firstName": f"First{i % 997}", "lastName": f"Last{i}", "company": f"Company {i % 5000}",
             "title": "Buyer", "phone": f"+1 555 {i % 10_000:04d}"} for i in range(n)]


def emulator() -> MarketoEmulator:
    return MarketoEmulator(client_id="bench", client_secret="bench-secret", calls_per_window=CALLS,
                           window_seconds=WINDOW, max_concurrency=CONCURRENCY, daily_quota=10**7).start()


def run_ours(data: list[dict[str, Any]], client: redis.Redis) -> float:
    server = emulator()
    prefix = unique_prefix("marketo")
    limiter = SharedLimiter(LimiterState(client, Keys(prefix)), CALLS, WINDOW, CONCURRENCY)
    try:
        with MarketoClient(server.url, "bench", "bench-secret", limiter=limiter) as marketo:
            marketo.create_lead_fields([ID_FIELD])
            server.reset_counters()
            chunks = [data[i:i + BATCH] for i in range(0, len(data), BATCH)]
            started = time.perf_counter()
            with ThreadPoolExecutor(CONCURRENCY) as pool:
                outcomes = list(pool.map(lambda chunk: marketo.sync_leads(chunk, "dynamicsLeadId"), chunks))
            elapsed = time.perf_counter() - started
        created = sum(r.status == "created" for results in outcomes for r in results)
        calls = server.calls(LEADS_PATH)
        report("ours_seconds", elapsed)
        report("ours_records_per_second", len(data) / elapsed)
        report("ours_ratio_to_ceiling", len(data) / elapsed / CEILING)
        report("ours_calls_per_1000_records", 1000 * len(calls) / len(data))
        report("ours_created", created)
        report("ours_rejected_606_615", sum(c.code in {"606", "615"} for c in calls))
        report("ours_max_calls_in_any_window", server.max_calls_in_any_window)
        report("ours_max_concurrent_seen", server.max_concurrent_seen)
        assert server.lead_count() == len(data), "leads lost"
        return elapsed
    finally:
        server.stop()
        delete_prefix(client, prefix)


def run_rest_python(data: list[dict[str, Any]]) -> float:
    server = emulator()
    try:
        with MarketoClient(server.url, "bench", "bench-secret") as setup:
            setup.create_lead_fields([ID_FIELD])
        server.reset_counters()
        other = LocalRestPythonClient(server.url, "bench", "bench-secret")
        started = time.perf_counter()
        for i in range(0, len(data), BATCH):
            other.execute("create_update_leads", leads=data[i:i + BATCH], action="createOrUpdate",
                          lookupField="dynamicsLeadId")
        elapsed = time.perf_counter() - started
        report("marketorestpython_seconds", elapsed)
        report("marketorestpython_records_per_second", len(data) / elapsed)
        report("marketorestpython_calls_per_1000_records", 1000 * len(server.calls(LEADS_PATH)) / len(data))
        assert server.lead_count() == len(data), "leads lost"
        return elapsed
    finally:
        server.stop()


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else run_size("BENCH_N", 100_000, 10_000)
    client = redis.Redis.from_url(REDIS_URL)
    data = records(n)
    report("n", n)
    report("ceiling_records_per_second", CEILING)
    report("floor_calls_per_1000_records", 1000 / BATCH)
    ours = run_ours(data, client)
    theirs = run_rest_python(data)
    report("time_ratio_ours_to_marketorestpython", ours / theirs)


if __name__ == "__main__":
    main()
