"""Benchmark of the initial sync with one custom table (issue #14): Dynamics emulator → RQ workers →
Marketo emulator, people first, then the custom table's records as Marketo custom objects.

    .venv/bin/python bench/bench_custom.py          # 20k leads + 10k contacts (+ 10k new_project)
    BENCH_QUICK=1 .venv/bin/python bench/bench_custom.py

Marketo's window is scaled as in `bench_sync` (100 calls / 2 s, 10 concurrent: a ceiling of 15,000
records/s). Measured twice in one run: the people alone (today's figure) and the people plus one custom
table, whose job runs when the people's run finishes. Prints records/s as a ratio to the Marketo ceiling
for both and their ratio (goal ≥ 0.90). Needs Redis at REDIS_URL.
"""

from __future__ import annotations

import os
import sys
import time
import uuid
from pathlib import Path

import redis

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.models import RunStatus  # noqa: E402
from bot.sync import runs  # noqa: E402
from bot.sync.custom_objects import plan_custom_objects, reachable_tables  # noqa: E402
from sandbox.polling import wait_for  # noqa: E402
from tests.integration.sync_harness import SyncHarness  # noqa: E402

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/15")
CALLS, WINDOW, CONCURRENCY, BATCH = 100, 2.0, 10, 300
CEILING = BATCH * CALLS / WINDOW
PROJECT_COLUMNS = ["new_name", "new_budget", "new_seats", "new_startdate", "new_isactive"]


def _add_custom_table(harness: SyncHarness) -> None:
    with harness.container.dataverse("T1", harness.connection.id) as client:
        tables = client.with_columns(client.custom_tables(), ["new_project", "new_projectnote"])
    plans, _ = plan_custom_objects(reachable_tables(tables), {"new_project": PROJECT_COLUMNS}, set())
    marketo = harness.container.marketo()
    for plan in plans:
        marketo.ensure_custom_object(plan)
    plan = harness.connection.plan.model_copy(update={"custom_objects": plans})
    harness.connection = harness.connection.model_copy(update={"plan": plan})
    harness.store.save_connection(harness.connection)


def measure(people: dict[str, int], projects: int) -> tuple[int, float]:
    """Records written (people + custom objects) and the seconds from the run's start to the last one."""
    from rq import Worker

    prefix = f"bench{uuid.uuid4().hex[:8]}"
    harness = SyncHarness(
        REDIS_URL, prefix, people, dynamics={"records": {**people, "new_project": projects}},
        marketo={"calls_per_window": CALLS, "window_seconds": WINDOW, "max_concurrency": CONCURRENCY},
        settings={"MARKETO_MAX_CONCURRENCY": CONCURRENCY, "PROGRESS_UPDATE_SECONDS": 10},
        dynamics_process=True,
    ).start()
    queue = harness.container.queue
    try:
        if projects:
            _add_custom_table(harness)
        workers = [harness.spawn_worker(), harness.spawn_worker()]
        wait_for(lambda: len(Worker.all(queue=queue)) >= len(workers), "the workers to start", timeout=60, interval=0.02)
        started = time.monotonic()
        run = runs.start_initial_sync(harness.store, queue, harness.connection)
        final = harness.wait_run(run.id, lambda r: r.status != RunStatus.running, timeout=1800)
        if final.status != RunStatus.finished:
            raise RuntimeError(f"run ended {final.status}: {final.message}")
        written = sum(p.written for p in final.entities)
        if projects:
            job_id = f"custom-objects-{harness.connection.id}"
            def finished() -> bool:  # None until the run's last entity enqueued it
                job = queue.fetch_job(job_id)
                return job is not None and job.is_finished

            wait_for(finished, "the custom tables job to finish", timeout=1800, interval=0.02)
            written += len(harness.marketo.custom_objects.records("dynNewProject"))
        return written, time.monotonic() - started
    finally:
        harness.stop()
        client = redis.Redis.from_url(REDIS_URL)
        for key in client.scan_iter(match=f"{prefix}:*", count=1000):
            client.delete(key)


def main() -> None:
    quick = os.environ.get("BENCH_QUICK") == "1"
    leads = int(os.environ.get("BENCH_LEADS", 5_000 if quick else 20_000))
    contacts = int(os.environ.get("BENCH_CONTACTS", leads // 2))
    projects = int(os.environ.get("BENCH_PROJECTS", contacts))
    people = {"lead": leads, "contact": contacts}
    base_records, base_seconds = measure(people, 0)
    records, seconds = measure(people, projects)
    base_ratio = base_records / base_seconds / CEILING
    ratio = records / seconds / CEILING
    print(f"records_people: {base_records}")
    print(f"records_people_and_custom: {records}")
    print(f"throughput_ratio_to_ceiling_people: {base_ratio:.3f}")
    print(f"throughput_ratio_to_ceiling_with_custom: {ratio:.3f}")
    print(f"custom_vs_people_throughput: {ratio / base_ratio:.3f}")


if __name__ == "__main__":
    main()
