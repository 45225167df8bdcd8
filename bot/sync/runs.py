"""Starting, resuming and cancelling sync runs; each entity of a run is one RQ job.

A run has one RQ job per entity, so entities run on different workers at once; the run record
aggregates them. Job arguments are ids only (team, run, entity): the worker loads and decrypts
what it needs. Which job is responsible for an entity is recorded in its checkpoint, so the
sweeper can tell a dead job from a slow one and re-enqueue it (see `sweeper.py`). Jobs are
enqueued by the dotted name of their entry point (`bot.sync.entry`), which the worker resolves.
"""

from __future__ import annotations

from collections.abc import Callable

from rq import Queue
from rq.job import Dependency

from bot import flow
from bot.errors import FlowError
from bot.models import Connection, Entity, EntityProgress, RunStatus, SyncRun
from bot.notify import Notifier
from bot.store import Store
from bot.sync.checkpoint import TERMINAL_RUN, Checkpoint, EntityState, RunState
from bot.sync.opportunities import PREREQUISITES
from bot.sync.settle import quietly, settle

JOB_TIMEOUT = 24 * 3600  # an initial sync of millions of records takes hours, not days
RESULT_TTL = 24 * 3600
ENTITY_JOB = "bot.sync.entry.sync_entity_job"


def start_initial_sync(store: Store, queue: Queue, connection: Connection, notifier: Notifier | None = None, *,
                       entities: list[Entity] | None = None, kind: str = "initial") -> SyncRun:
    """Create the run for an approved connection and enqueue one job per planned entity.

    `entities` limits a run to some entities (a full re-read after a change token expired: kind "resync").
    Accounts are enqueued first, so people mostly find their company written (`bot.sync.links`).
    """
    if connection.plan is None or not connection.plan.entities:
        raise FlowError("There is no field plan to sync yet. Finish Step 2 first.")
    plans = sorted((p for p in connection.plan.entities if entities is None or p.entity in entities),
                   key=lambda p: p.entity != Entity.account)
    run = SyncRun(
        team_id=connection.team_id,
        connection_id=connection.id,
        requester=connection.requester,
        kind=kind,
        status=RunStatus.running,
        entities=[EntityProgress(entity=p.entity, estimated=p.record_count or 0) for p in plans],
    )
    return launch_run(store, queue, run, notifier, before_jobs=lambda: flow.start_sync(
        store, connection.team_id, connection.id, run.id))


def launch_run(store: Store, queue: Queue, run: SyncRun, notifier: Notifier | None,
               before_jobs: Callable[[], object] = lambda: None) -> SyncRun:
    """Save a new run with a fresh checkpoint per entity, make it active, post its progress message and
    enqueue one job per entity (after `before_jobs`, e.g. the connection following the run)."""
    store.save_run(run)
    state = RunState(store, run.team_id, run.id)
    for progress in run.entities:
        state.save(Checkpoint(entity=progress.entity))
    before_jobs()
    store.active_runs.add(run.team_id, run.id)
    if notifier is not None:
        quietly(notifier.progress, run.team_id, run.id, force=True)
    jobs: dict[Entity, str] = {}
    for progress in sorted(run.entities, key=lambda p: p.entity in PREREQUISITES):
        after = [jobs[e] for e in PREREQUISITES.get(progress.entity, ()) if e in jobs]
        jobs[progress.entity] = enqueue_entity(store, queue, run.team_id, run.id, progress.entity, after=after)
    return store.get_run(run.team_id, run.id) or run


def enqueue_entity(store: Store, queue: Queue, team_id: str, run_id: str, entity: Entity, *,
                   after: list[str] | None = None) -> str:
    """Make a new job responsible for `entity` (recorded in its checkpoint), then enqueue it; `after`: the
    jobs it waits for (however they end: a paused or lost prerequisite does not hold it back for ever)."""
    state = RunState(store, team_id, run_id)
    job_id = ""

    def assign(ckpt: Checkpoint) -> None:
        nonlocal job_id
        ckpt.attempts += 1
        job_id = f"sync-{run_id}-{entity.value}-{ckpt.attempts}"
        ckpt.job_id = job_id

    state.set_state(entity, EntityState.queued, change=assign)
    queue.enqueue(ENTITY_JOB, team_id, run_id, entity.value, job_id=job_id,
                  depends_on=Dependency(jobs=after, allow_failure=True) if after else None,
                  job_timeout=JOB_TIMEOUT, result_ttl=RESULT_TTL, failure_ttl=RESULT_TTL,
                  description=f"sync {entity.value} for run {run_id}")
    return job_id


def resume_run(store: Store, queue: Queue, team_id: str, run_id: str) -> SyncRun:
    """Re-enqueue every paused or failed entity of a run; each continues from its checkpoint."""
    state = RunState(store, team_id, run_id)
    run = state.run()
    if run is None:
        raise FlowError("That sync run no longer exists.")
    if run.status not in (RunStatus.paused, RunStatus.failed):
        raise FlowError(f"This sync is {run.status.value}; only a paused or failed sync can be resumed.")
    store.active_runs.add(team_id, run_id)
    for progress in run.entities:
        if state.load(progress.entity).state in (EntityState.paused, EntityState.failed):
            enqueue_entity(store, queue, team_id, run_id, progress.entity)
    resumed = state.run() or run
    flow.follow_run(store, resumed)
    return resumed


def request_cancel(store: Store, team_id: str, run_id: str, notifier: Notifier | None = None,
                   queue: Queue | None = None) -> SyncRun:
    """Ask the run to stop. Running entities stop at their next batch boundary; idle ones at once (then,
    with the queue, the connection's Dataverse webhook is removed here: no job will settle the run). The run's
    Bulk Import slots are released now (a running job releases any it takes meanwhile as it stops)."""
    state = RunState(store, team_id, run_id)
    run = state.run()
    if run is None:
        raise FlowError("That sync run no longer exists.")
    if run.status in TERMINAL_RUN:
        return run
    state.request_cancel()
    store.bulk_import_slots().release_run(team_id, run_id)
    for progress in run.entities:
        if state.load(progress.entity).state in (EntityState.paused, EntityState.failed):
            settle(store, notifier, state.set_state(progress.entity, EntityState.cancelled, "Cancelled."), queue)
    return state.run() or run
