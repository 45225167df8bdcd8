"""Benchmark of a large lead load through both write paths, side by side: Bulk Import vs REST.

    .venv/bin/python bench/bench_bulk.py                     # 1M leads (REST measured at 100k)
    BENCH_QUICK=1 .venv/bin/python bench/bench_bulk.py       # 100k leads (REST at 20k)

The Dynamics emulator synthesizes the leads deterministically (nothing is stored on disk); workers are
real `python -m bot.worker` subprocesses. Marketo's window is scaled to 100 calls / 2 s (one tenth of
the real 20 s) and so is the status poll (`BULK_IMPORT_POLL_SECONDS` 0.5 for the real 5); the
emulator imports `BENCH_IMPORT_RATE` rows/s per running job (2 run at once). Prints `name: value`:
- Marketo API calls per 1,000 records on each path (bulk goal ≤ 0.05; REST's floor is 1000/300 = 3.33)
  and the share of a 50,000-call daily quota a load of N records takes on each;
- the worker's peak RSS with Bulk Import at N vs N/5 (goal ≤ 1.3: parts are streamed to disk);
- wall time on each path, the import rate beside it. REST runs at `BENCH_BULK_REST_LEADS` records
  (its cost per record is flat: every call carries 300) and its figures at N are extrapolated
  linearly, stated as such.
Needs Redis at REDIS_URL (default redis://127.0.0.1:6379/15).
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import redis

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_sync import RssSampler  # noqa: E402
from bench.common import REDIS_URL, delete_prefix, report, run_size, unique_prefix  # noqa: E402
from bot.models import Entity, RunStatus  # noqa: E402
from bot.sync import runs  # noqa: E402
from tests.integration.sync_harness import SyncHarness  # noqa: E402

LEADS = run_size("BENCH_BULK_LEADS", 1_000_000, 100_000)
REST_LEADS = run_size("BENCH_BULK_REST_LEADS", 100_000, 20_000)
IMPORT_RATE = float(os.environ.get("BENCH_IMPORT_RATE", 50_000))
CALLS, WINDOW, CONCURRENCY = 100, 2.0, 10
POLL_SECONDS = 0.5
DAILY_QUOTA = 50_000


@dataclass
class Result:
    records: int  # written to Marketo (imported or upserted)
    calls: int
    seconds: float
    peak_rss: int
    parts: int


def measure(leads: int, *, bulk: bool) -> Result:
    from rq import Worker  # here, after `bot`: importing bot first gives RQ its key prefix, as in the workers

    prefix = unique_prefix("bulk")
    harness = SyncHarness(
        REDIS_URL, prefix, {"lead": leads},
        marketo={"calls_per_window": CALLS, "window_seconds": WINDOW, "max_concurrency": CONCURRENCY,
                 "import_rate": IMPORT_RATE, "daily_quota": 10**9},
        settings={"MARKETO_MAX_CONCURRENCY": CONCURRENCY, "BULK_IMPORT_MIN_RECORDS": 0 if bulk else -1,
                  "BULK_IMPORT_POLL_SECONDS": POLL_SECONDS, "PROGRESS_UPDATE_SECONDS": 10},
        dynamics_process=True,
    ).start()
    sampler = RssSampler()
    sampler.start()
    try:
        worker = harness.spawn_worker()
        sampler.pids.add(worker.pid)
        deadline = time.monotonic() + 60
        while not Worker.all(queue=harness.container.queue):
            if time.monotonic() > deadline:
                raise TimeoutError("the worker did not start")
            time.sleep(0.05)
        started = time.monotonic()
        run = runs.start_initial_sync(harness.store, harness.container.queue, harness.connection)
        final = harness.wait_run(run.id, lambda r: r.status != RunStatus.running, timeout=3600)
        seconds = time.monotonic() - started
        if final.status != RunStatus.finished:
            raise RuntimeError(f"run ended {final.status}: {final.message}")
        progress = next(p for p in final.entities if p.entity == Entity.lead)
        persons = progress.imported + progress.created + progress.updated
        if harness.marketo.lead_count() != persons:
            raise RuntimeError(f"Marketo holds {harness.marketo.lead_count()} persons, {persons} expected")
        return Result(persons, final.api_calls, seconds, sampler.peak, progress.parts_done)
    finally:
        sampler.stopped.set()
        harness.stop()
        delete_prefix(redis.Redis.from_url(REDIS_URL), prefix)


def main() -> None:
    small = measure(LEADS // 5, bulk=True)
    bulk = measure(LEADS, bulk=True)
    rest = measure(REST_LEADS, bulk=False)
    bulk_per_1000 = bulk.calls / bulk.records * 1000
    rest_per_1000 = rest.calls / rest.records * 1000
    scale = bulk.records / rest.records  # REST at N, extrapolated from REST_LEADS
    report("leads", LEADS)
    report("bulk_records_written", bulk.records)
    report("bulk_parts", bulk.parts)
    report("bulk_api_calls", bulk.calls)
    report("bulk_calls_per_1000_records", f"{bulk_per_1000:.4f}")
    report("bulk_daily_quota_share", f"{bulk.calls / DAILY_QUOTA:.5f}")
    report("rest_measured_at_records", rest.records)
    report("rest_calls_per_1000_records", rest_per_1000)
    report("rest_daily_quota_share_extrapolated_to_n", rest.calls * scale / DAILY_QUOTA)
    report("calls_ratio_bulk_to_rest", f"{bulk_per_1000 / rest_per_1000:.4f}")
    report(f"bulk_peak_rss_mb_at_{LEADS // 5 // 1000}k", small.peak_rss / 2**20)
    report(f"bulk_peak_rss_mb_at_{LEADS // 1000}k", bulk.peak_rss / 2**20)
    report("bulk_peak_rss_ratio", bulk.peak_rss / small.peak_rss)
    report("emulator_import_rate_rows_per_second_per_job", int(IMPORT_RATE))
    report("bulk_seconds", bulk.seconds)
    report("bulk_records_per_second", bulk.records / bulk.seconds)
    report("rest_seconds_measured", rest.seconds)
    report("rest_records_per_second", rest.records / rest.seconds)
    report("rest_seconds_extrapolated_to_n", rest.seconds * scale)
    report("wall_time_ratio_bulk_to_rest", bulk.seconds / (rest.seconds * scale))

if __name__ == "__main__":
    main()
