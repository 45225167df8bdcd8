"""Benchmark of the initial sync, end to end: Dynamics emulator → RQ workers → Marketo emulator.

    .venv/bin/python bench/bench_sync.py            # 100k leads + 50k contacts
    BENCH_LEADS=20000 BENCH_CONTACTS=10000 .venv/bin/python bench/bench_sync.py

Marketo's window is scaled to 100 calls / 2 s with 10 concurrent calls, so the ceiling is
300 × 100 / 2 = 15,000 records/s. Workers are real `python -m bot.worker` subprocesses (two, so
leads and contacts run at once). Prints `name: value` lines:
- throughput as a ratio to the Marketo ceiling (target ≥ 0.85);
- the worker's peak RSS at 30k vs 150k records (target ratio ≤ 1.3);
- the time a SIGKILL of the lead worker costs (lease + sweep + re-read of one page) and the
  batches/records written twice because of it (target ≤ 2 batches per entity). Batches the dead
  worker left in flight are read back from Marketo first and only records Marketo lacks are resent.
Needs Redis at REDIS_URL (default redis://127.0.0.1:6379/15).
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import redis

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import REDIS_URL, delete_prefix, unique_prefix  # noqa: E402
from bot.models import Entity, RunStatus, SyncRun  # noqa: E402
from bot.sync import runs  # noqa: E402
from bot.sync.checkpoint import RunState  # noqa: E402
from sandbox.polling import wait_for  # noqa: E402
from tests.integration.sync_harness import SyncHarness  # noqa: E402

CALLS, WINDOW, CONCURRENCY, BATCH = 100, 2.0, 10, 300
CEILING = BATCH * CALLS / WINDOW
LEASE_SECONDS = 5
LEADS_PATH = "/rest/v1/leads.json"


@dataclass
class Result:
    records: int
    seconds: float
    peak_rss: int
    rewritten: dict[str, tuple[int, int]]  # entity -> (batches, records) sent to Marketo twice
    extra_calls: int  # Marketo calls beyond one per batch (checks of in-flight batches + rewrites)
    cpu_seconds: dict[str, float]  # per process kind, over the whole measurement


class RssSampler(threading.Thread):
    """The largest resident set of any of the given processes, sampled every 20 ms."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.pids: set[int] = set()
        self.peak = 0
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(0.02):
            for pid in list(self.pids):
                try:
                    self.peak = max(self.peak, psutil.Process(pid).memory_info().rss)
                except psutil.NoSuchProcess:
                    self.pids.discard(pid)


@contextmanager
def scaled_world(kind: str, records: dict[str, int], *, dynamics: dict[str, Any] | None = None,
                 settings: dict[str, Any] | None = None) -> Iterator[SyncHarness]:
    """A sync world with Marketo's window scaled (CALLS / WINDOW s, CONCURRENCY at once) and the Dynamics
    emulator in its own process; `records` are the entities planned. Stopped and its keys deleted on exit."""
    prefix = unique_prefix(kind)
    harness = SyncHarness(
        REDIS_URL, prefix, records, dynamics=dynamics,
        marketo={"calls_per_window": CALLS, "window_seconds": WINDOW, "max_concurrency": CONCURRENCY},
        settings={"MARKETO_MAX_CONCURRENCY": CONCURRENCY, "PROGRESS_UPDATE_SECONDS": 10, **(settings or {})},
        dynamics_process=True,
    ).start()
    try:
        yield harness
    finally:
        harness.stop()
        delete_prefix(redis.Redis.from_url(REDIS_URL), prefix)


def start_workers(harness: SyncHarness, count: int = 2) -> list[subprocess.Popen]:
    """`count` real worker processes (two: entities run at once), returned once RQ knows them all."""
    from rq import Worker  # here, after `bot`: importing bot first gives RQ its key prefix, as in the workers

    workers = [harness.spawn_worker() for _ in range(count)]
    wait_for(lambda: len(Worker.all(queue=harness.container.queue)) >= count, "the workers to start", timeout=60)
    return workers


def finished_run(harness: SyncHarness, run: SyncRun) -> SyncRun:
    """The run once it stopped running; an error unless it finished."""
    final = harness.wait_run(run.id, lambda r: r.status != RunStatus.running, timeout=1800)
    if final.status != RunStatus.finished:
        raise RuntimeError(f"run ended {final.status}: {final.message}")
    return final


def _cpu(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        try:
            times = psutil.Process(pid).cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


def measure(leads: int, contacts: int, *, kill: bool = False) -> Result:
    from rq import Worker  # here, after `bot`: importing bot first gives RQ its key prefix, as in the workers

    sampler = RssSampler()
    sampler.start()
    with scaled_world("sync", {"lead": leads, "contact": contacts},
                      settings={"SYNC_LEASE_SECONDS": LEASE_SECONDS, "SYNC_SWEEP_SECONDS": 1}) as harness:
        try:
            queue = harness.container.queue
            workers = start_workers(harness)
            sampler.pids.update(w.pid for w in workers)
            kinds = {"workers": [w.pid for w in workers], "dynamics_emulator": [harness.dynamics.pid],
                     "marketo_emulator_and_bench": [os.getpid()]}
            cpu_before = {kind: _cpu(pids) for kind, pids in kinds.items()}
            started = time.monotonic()
            run = runs.start_initial_sync(harness.store, queue, harness.connection)
            state = RunState(harness.store, "T1", run.id)
            if kill:
                def lead() -> int:
                    return next(p for p in harness.store.get_run("T1", run.id).entities
                                if p.entity == Entity.lead).written

                wait_for(lambda: lead() > leads * 0.3, "the lead sync to get going", timeout=300)
                busy = {w.pid: w.get_current_job_id() for w in Worker.all(queue=queue)}
                victim = next(w for w in workers if busy.get(w.pid) == state.load(Entity.lead).job_id)
                harness.kill(victim)
                sampler.pids.add(harness.spawn_worker().pid)  # a supervisor restarts the worker
            final = finished_run(harness, run)
            seconds = time.monotonic() - started
            cpu = {kind: _cpu(pids) - cpu_before[kind] for kind, pids in kinds.items()}
        finally:
            sampler.stopped.set()
        written = sum(p.written for p in final.entities)
        persons = sum(p.created + p.updated for p in final.entities)
        if harness.marketo.lead_count() != persons:
            raise RuntimeError(f"Marketo holds {harness.marketo.lead_count()} persons, {persons} expected")
        batches = sum(-(-p.written // BATCH) for p in final.entities)
        writes = [c for c in harness.marketo.calls(LEADS_PATH) if c.admitted and c.method == "POST"]
        rewritten = {p.entity.value: (state.load(p.entity).rewritten_batches, state.load(p.entity).rewritten_records)
                     for p in final.entities}
        return Result(written, seconds, sampler.peak, rewritten, len(writes) - batches, cpu)


def main() -> None:
    leads = int(os.environ.get("BENCH_LEADS", 100_000))
    contacts = int(os.environ.get("BENCH_CONTACTS", 50_000))
    small = measure(leads * 3 // 15, contacts * 3 // 15)
    full = measure(leads, contacts)
    rate = full.records / full.seconds
    print(f"records_total: {leads + contacts}")
    print(f"records_written: {full.records}")
    print(f"seconds: {full.seconds:.2f}")
    print(f"records_per_second: {rate:.0f}")
    print(f"marketo_ceiling_records_per_second: {CEILING:.0f}")
    print(f"throughput_ratio_to_ceiling: {rate / CEILING:.3f}")
    print(f"cpu_cores: {os.cpu_count()}")
    for kind, seconds in full.cpu_seconds.items():
        print(f"cpu_seconds_per_10k_records_{kind}: {seconds / full.records * 10_000:.2f}")
    print(f"peak_rss_mb_at_{(leads + contacts) // 5 // 1000}k: {small.peak_rss / 2**20:.1f}")
    print(f"peak_rss_mb_at_{(leads + contacts) // 1000}k: {full.peak_rss / 2**20:.1f}")
    print(f"peak_rss_ratio: {full.peak_rss / small.peak_rss:.3f}")
    killed = measure(leads, contacts, kill=True)
    print(f"sigkill_lease_seconds: {LEASE_SECONDS}")
    print(f"sigkill_seconds_lost: {killed.seconds - full.seconds:.2f}")
    for entity, (batches, records) in killed.rewritten.items():
        print(f"sigkill_rewritten_batches_{entity}: {batches}")
        print(f"sigkill_rewritten_records_{entity}: {records}")
    print(f"sigkill_extra_marketo_calls: {killed.extra_calls}")

if __name__ == "__main__":
    main()
