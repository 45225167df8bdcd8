"""A whole sync world over loopback: the Dynamics, Marketo and Slack emulators, real Redis, a saved
connection with its field plan, and helpers to run workers (in-process or as subprocesses) and to
check Marketo against what Dynamics holds. Used by the sync integration tests and `bench/bench_sync.py`.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import redis
from cryptography.fernet import Fernet
from rq import SimpleWorker

from bot.config import Settings
from bot.container import Container
from bot.models import Connection, Credentials, Entity, FlowState, RunStatus, SyncRun
from bot.sync import entry, incremental, runs
from bot.sync.convert import convert_record
from bot.sync.mapping import build_plan, default_selection
from bot.sync.planning import count_records
from sandbox.dynamics import DynamicsEmulator
from sandbox.marketo import MarketoEmulator
from sandbox.slack import SlackEmulator
from tests.conftest import REDIS_URL

ROOT = Path(__file__).resolve().parents[2]
USERNAME, PASSWORD = "sync@contoso.com", "Passw0rd!"
CHANNEL = "C0SYNC"
# The two write paths a sync can take, as (Marketo emulator knobs, settings): Bulk Import in parts of about
# 500 rows imported at 400 rows/s per job, so a worker stopped mid-run stops mid-import.
WRITE_PATHS: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "rest": ({}, {"BULK_IMPORT_MIN_RECORDS": -1}),
    "bulk": ({"import_rate": 400}, {"BULK_IMPORT_MIN_RECORDS": 0, "BULK_IMPORT_PART_BYTES": 60_000,
                                    "BULK_IMPORT_POLL_SECONDS": 0.1}),
}


def _serve_dynamics(config: dict[str, Any], pipe: Any) -> None:
    emulator = DynamicsEmulator(**config).start()
    pipe.send((emulator.url, emulator.authority_host, emulator.ca_path))
    pipe.recv()
    emulator.stop()


class DynamicsProcess:
    """The Dynamics emulator in a process of its own, for benchmarks: the emulators then do not share
    one interpreter lock, so what is measured is the sync. Offers what set-up needs (no inspection)."""

    def __init__(self, **config: Any) -> None:
        self.config = config

    def start(self) -> DynamicsProcess:
        context = multiprocessing.get_context("spawn")
        self._pipe, child = context.Pipe()
        self._process = context.Process(target=_serve_dynamics, args=(self.config, child), daemon=True)
        self._process.start()
        self.url, self.authority_host, self.ca_path = self._pipe.recv()
        self.pid = self._process.pid
        return self

    def stop(self) -> None:
        self._pipe.send("stop")
        self._process.join(timeout=10)


@contextmanager
def imports_stalled(world: SyncHarness) -> Iterator[None]:
    """Marketo's import queue stalls (a busy instance) on the Bulk path: uploaded imports wait in it until
    the block ends, so a worker stopped inside the block certainly leaves some there. Nothing on REST."""
    bulk = world.marketo.bulk
    rate = bulk.rate
    if world.path == "bulk":
        bulk.rate = 0.0
    try:
        yield
    finally:
        bulk.rate = rate


class SyncHarness:
    def __init__(self, redis_url: str, prefix: str, records: dict[str, int], *, marketo: dict[str, Any] | None = None,
                 dynamics: dict[str, Any] | None = None, settings: dict[str, Any] | None = None,
                 dynamics_process: bool = False) -> None:
        self.redis_url, self.prefix, self.records = redis_url, prefix, records
        config = {"records": records, "sync_filter": {e: "new_synctomkto" for e in records if e != "account"},
                  "duplicate_fraction": 0.1, **(dynamics or {})}
        self.dynamics = DynamicsProcess(**config) if dynamics_process else DynamicsEmulator(**config)
        self.marketo = MarketoEmulator(**(marketo or {}))
        self.slack = SlackEmulator()
        self._settings_overrides = settings or {}
        self.workers: list[subprocess.Popen] = []
        self.path = "rest"  # which write path a parametrized test runs ("rest" or "bulk")

    # -- set-up ------------------------------------------------------------------------------------
    def start(self) -> SyncHarness:
        self.dynamics.start()
        self.marketo.start()
        self.slack.start()
        self.env = {
            "REDIS_URL": self.redis_url, "REDIS_KEY_PREFIX": self.prefix,
            "ENCRYPTION_KEY": Fernet.generate_key().decode(),
            "SLACK_BOT_TOKEN": self.slack.bot_token, "SLACK_API_URL": self.slack.api_url, "NOTIFY_CHANNEL": CHANNEL,
            "ENTRA_AUTHORITY_HOST": self.dynamics.authority_host, "CA_BUNDLE": self.dynamics.ca_path,
            "DYNAMICS_HOST_ALLOWLIST": urlsplit(self.dynamics.url).netloc,
            "MARKETO_BASE_URL": self.marketo.url, "MARKETO_CLIENT_ID": self.marketo.client_id,
            "MARKETO_CLIENT_SECRET": "emulator-secret",
            "MARKETO_CALLS_PER_WINDOW": str(self.marketo.calls_per_window),
            "MARKETO_WINDOW_SECONDS": str(self.marketo.window_seconds),
            "PROGRESS_UPDATE_SECONDS": "0.5", "SYNC_LEASE_SECONDS": "2", "SYNC_SWEEP_SECONDS": "0.5",
            "METRICS_PORT": "0",  # workers of several tests share this host; a test that scrapes sets a free port
            **{k: str(v) for k, v in self._settings_overrides.items()},
        }
        self.settings = Settings(**self.env)
        self.container = Container(self.settings, redis.Redis.from_url(self.redis_url))
        self.store = self.container.store
        self.connection = self._connect()
        return self

    def _connect(self) -> Connection:
        connection = Connection(team_id="T1", requester="U0REQ", state=FlowState.approved,
                                dynamics_url=self.dynamics.url, username=USERNAME, notify_email="ops@example.com")
        self.store.save_credentials("T1", connection.id, Credentials(username=USERNAME, password=PASSWORD,
                                                                     url=self.dynamics.url))
        self.store.save_connection(connection)
        with self.container.dataverse("T1", connection.id) as client:
            metadata = {Entity(e): client.entity_metadata(Entity(e)) for e in self.records}
            counts = count_records(client, metadata)  # Step 2 counts them, before the approval
        marketo = self.container.marketo()
        existing = {f.name for f in marketo.list_lead_fields()}
        plan = build_plan(metadata, {e: default_selection(m) for e, m in metadata.items()}, existing, counts)
        marketo.create_lead_fields(plan.fields_to_create)
        connection.plan = plan
        self.store.save_connection(connection)
        self.marketo.reset_counters()
        return connection

    def stop(self) -> None:
        for worker in self.workers:
            self.kill(worker)
        self.container.queue.delete(delete_jobs=True)
        for emulator in (self.dynamics, self.marketo, self.slack):
            emulator.stop()

    # -- workers -----------------------------------------------------------------------------------
    def spawn_worker(self, log_path: str | None = None) -> subprocess.Popen:
        """`python -m bot.worker` in its own process group (SIGKILL takes the whole worker down); its
        output goes to `log_path`, else to `$SYNC_WORKER_LOG`, else nowhere."""
        env = {**os.environ, **self.env, "PYTHONPATH": str(ROOT)}
        log = open(log_path or os.environ.get("SYNC_WORKER_LOG", os.devnull), "ab")  # noqa: SIM115 - the child owns it
        worker = subprocess.Popen([sys.executable, "-m", "bot.worker"], cwd=ROOT, env=env, start_new_session=True,
                                  stdout=log, stderr=log)
        log.close()
        self.workers.append(worker)
        return worker

    @staticmethod
    def kill(worker: subprocess.Popen) -> None:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait(timeout=10)

    def wait_run(self, run_id: str, done: Any, timeout: float = 120) -> SyncRun:
        deadline = time.monotonic() + timeout
        while True:
            run = self.store.get_run("T1", run_id)
            if done(run):
                return run
            if time.monotonic() > deadline:
                raise TimeoutError(f"run {run_id} still {run.status if run else None}: {run}")
            time.sleep(0.05)

    # -- checks ------------------------------------------------------------------------------------
    def expected(self, entity: Entity) -> dict[str, dict]:
        """What Marketo must hold: the emulator's own list of records that pass the filter, converted
        from a plain read (the read brings the formatted labels that picklists and lookups sync as)."""
        plan = self.connection.plan.for_entity(entity)
        wanted = {rec[entity.primary_id] for rec in self.dynamics.expected_records(entity.value, plan.select)}
        with self.container.dataverse("T1", self.connection.id) as client:
            return {rec[entity.primary_id]: convert_record(rec, plan)
                    for page in client.iter_pages(entity, plan.select, track_changes=False)
                    for rec in page.records if rec[entity.primary_id] in wanted}

    def mismatches(self, entity: Entity) -> list[str]:
        """Differences between Marketo and Dynamics for one entity (empty when exact)."""
        plan = self.connection.plan.for_entity(entity)
        expected = self.expected(entity)
        rows = [row for row in self.marketo.leads() if row.get(plan.id_field)]
        problems = []
        if len(rows) != len(expected):
            problems.append(f"{entity.value}: {len(rows)} persons in Marketo, {len(expected)} expected")
        for row in rows:
            want = expected.get(row[plan.id_field])
            if want is None:
                problems.append(f"unexpected {entity.value} {row[plan.id_field]}")
                continue
            diff = {k: (row.get(k), v) for k, v in want.items() if row.get(k) != v}
            if diff:
                problems.append(f"{entity.value} {row[plan.id_field]}: {diff}")
        return problems[:10]


def synced_world(key_prefix: str, records: dict[str, int], /, settings: dict[str, Any] | None = None,
                 marketo: dict[str, Any] | None = None, prepare: Callable[[SyncHarness], None] | None = None,
                 **dynamics: Any) -> Iterator[SyncHarness]:
    """A harness after a finished initial sync of `records`, run in-process. Every record passes the sync filter
    unless the Dynamics knobs (`dynamics`) say otherwise; `prepare` changes the world before that sync. Resuming
    the generator after its one harness unschedules the incremental sync and stops the emulators. That sync is
    a few batches: its progress message is updated unthrottled, so its end does not wait for an update slot."""
    harness = SyncHarness(REDIS_URL, key_prefix, records, dynamics={"filter_false_fraction": 0.0, **dynamics},
                          settings={"PROGRESS_UPDATE_SECONDS": 0, **(settings or {})}, marketo=marketo).start()
    entry.install(harness.container.sync)
    try:
        if prepare is not None:
            prepare(harness)
        run = runs.start_initial_sync(harness.store, harness.container.queue, harness.connection)
        SimpleWorker([harness.container.queue], connection=harness.store.redis).work(burst=True)
        assert harness.store.get_run("T1", run.id).status == RunStatus.finished
        yield harness
    finally:
        incremental.unschedule(harness.store, "T1", harness.connection.id)
        entry.install(None)
        harness.stop()
