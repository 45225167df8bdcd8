"""The sync as RQ jobs: start, resume and cancel a run; the per-entity job a worker executes.

A run has one RQ job per entity, so entities run on different workers at once; the run record
aggregates them. Job arguments are ids only (team, run, entity): the worker loads and decrypts
what it needs. Which job is responsible for an entity is recorded in its checkpoint, so the
sweeper can tell a dead job from a slow one and re-enqueue it (see `sweeper.py`).
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rq import Queue, get_current_job

from bot.config import Settings
from bot.errors import BotError, FlowError
from bot.models import Connection, Entity, EntityPlan, EntityProgress, FlowState, RunStatus, SyncRun
from bot.store import REDIS_UNAVAILABLE, Store
from bot.sync.checkpoint import (
    LIVE_STATES,
    TERMINAL_RUN,
    Checkpoint,
    EntityState,
    Heartbeat,
    Lease,
    LeaseLost,
    RunState,
    Transition,
)
from bot.sync.engine import UNEXPECTED, EntitySync, Outcome

log = logging.getLogger(__name__)

JOB_TIMEOUT = 24 * 3600  # an initial sync of millions of records takes hours, not days
RESULT_TTL = 24 * 3600
HEARTBEAT_POLL = 0.25
FLOW_STATE = {
    RunStatus.queued: FlowState.syncing,
    RunStatus.running: FlowState.syncing,
    RunStatus.paused: FlowState.paused,
    RunStatus.finished: FlowState.synced,
    RunStatus.cancelled: FlowState.cancelled,
    RunStatus.failed: FlowState.failed,
}


@dataclass
class SyncContext:
    """Everything a sync job needs, built once per worker process (see `Services`)."""

    settings: Settings
    store: Store
    queue: Queue
    dataverse: Callable[[str, str], Any]  # (team_id, connection_id) -> signed-in DataverseClient
    marketo: Callable[[], Any]  # -> the process's MarketoClient (shared limiter)
    notifier: Any | None = None  # bot.notify.Notifier

    @classmethod
    def from_services(cls, services: Any) -> SyncContext:
        return cls(settings=services.settings, store=services.store, queue=services.queue(),
                   dataverse=services.dataverse, marketo=services.marketo, notifier=services.notifier())


_context: SyncContext | None = None
_context_lock = threading.Lock()


def install_context(context: SyncContext | None) -> None:
    """Set the context jobs in this process use (the worker does this at start-up)."""
    global _context
    _context = context


def current_context() -> SyncContext:
    global _context
    with _context_lock:
        if _context is None:
            from bot.services import Services

            _context = SyncContext.from_services(Services.from_env())
        return _context


# -- starting, resuming, cancelling -------------------------------------------------------------------------


def start_initial_sync(store: Store, queue: Queue, connection: Connection, notifier: Any | None = None, *,
                       entities: list[Entity] | None = None, kind: str = "initial") -> SyncRun:
    """Create the run for an approved connection and enqueue one job per planned entity.

    `entities` limits a run to some entities (a full re-read after a change token expired: kind "resync").
    """
    if connection.plan is None or not connection.plan.entities:
        raise FlowError("There is no field plan to sync yet. Finish Step 2 first.")
    plans = [p for p in connection.plan.entities if entities is None or p.entity in entities]
    run = SyncRun(
        team_id=connection.team_id,
        connection_id=connection.id,
        requester=connection.requester,
        kind=kind,
        status=RunStatus.running,
        entities=[EntityProgress(entity=p.entity, estimated=p.record_count or 0) for p in plans],
    )
    store.save_run(run)
    state = RunState(store, run.team_id, run.id)
    for progress in run.entities:
        state.save(Checkpoint(entity=progress.entity))

    def mark(conn: Connection) -> Connection:
        conn.run_id, conn.state = run.id, FlowState.syncing
        return conn

    store.update_connection(connection.team_id, connection.id, mark)
    store.active_runs.add(run.team_id, run.id)
    if notifier is not None:
        _quietly(notifier.progress, run.team_id, run.id, force=True)
    for progress in run.entities:
        enqueue_entity(store, queue, run.team_id, run.id, progress.entity)
    return store.get_run(run.team_id, run.id) or run


def enqueue_entity(store: Store, queue: Queue, team_id: str, run_id: str, entity: Entity) -> str:
    """Make a new job responsible for `entity` (recorded in its checkpoint), then enqueue it."""
    state = RunState(store, team_id, run_id)
    job_id = ""

    def assign(ckpt: Checkpoint) -> None:
        nonlocal job_id
        ckpt.attempts += 1
        job_id = f"sync-{run_id}-{entity.value}-{ckpt.attempts}"
        ckpt.job_id = job_id

    state.set_state(entity, EntityState.queued, change=assign)
    queue.enqueue(sync_entity_job, team_id, run_id, entity.value, job_id=job_id,
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
    _sync_connection_state(store, resumed)
    return resumed


def request_cancel(store: Store, team_id: str, run_id: str, notifier: Any | None = None) -> SyncRun:
    """Ask the run to stop. Running entities stop at their next batch boundary; idle ones at once."""
    state = RunState(store, team_id, run_id)
    run = state.run()
    if run is None:
        raise FlowError("That sync run no longer exists.")
    if run.status in TERMINAL_RUN:
        return run
    state.request_cancel()
    for progress in run.entities:
        if state.load(progress.entity).state in (EntityState.paused, EntityState.failed):
            settle(store, notifier, state.set_state(progress.entity, EntityState.cancelled, "Cancelled."))
    return state.run() or run


# -- the job ---------------------------------------------------------------------------------------------


def sync_entity_job(team_id: str, run_id: str, entity: str) -> str:
    """The RQ entry point (ids only)."""
    job = get_current_job()
    return run_entity(current_context(), team_id, run_id, Entity(entity), job_id=job.id if job else None)


def run_entity(context: SyncContext, team_id: str, run_id: str, entity: Entity, *, job_id: str | None = None) -> str:
    """Run one entity's initial sync from its checkpoint. Returns how it ended (for logs and tests)."""
    store, settings = context.store, context.settings
    state = RunState(store, team_id, run_id)
    run = state.run()
    if run is None or run.status in TERMINAL_RUN:
        return "gone"
    ckpt = state.load(entity)
    if ckpt.state not in LIVE_STATES or (job_id and ckpt.job_id and ckpt.job_id != job_id):
        return "superseded"
    if state.cancel_requested():
        settle(store, context.notifier, state.set_state(entity, EntityState.cancelled, "Cancelled."))
        return "cancelled"
    connection = store.get_connection(team_id, run.connection_id)
    plan = connection.plan.for_entity(entity) if connection and connection.plan else None
    if plan is None:
        settle(store, context.notifier, state.set_state(entity, EntityState.failed, "The field plan for this sync is gone."))
        return "failed"
    lease = state.lease(run.connection_id, entity, settings.SYNC_LEASE_SECONDS, owner=job_id or "")
    if not lease.take(wait=settings.SYNC_LEASE_SECONDS * 1.5):
        return "busy"  # a live job holds this entity; the sweeper keeps watching it
    heartbeat = Heartbeat(lease, HEARTBEAT_POLL, state.cancel_requested)
    heartbeat.start()  # from here on: sign-in and counting can take longer than the lease
    try:
        return _run_locked(context, state, run, plan, lease, heartbeat, job_id)
    except LeaseLost:
        return "lost"
    finally:
        heartbeat.close()
        lease.release()


def _run_locked(context: SyncContext, state: RunState, run: SyncRun, plan: EntityPlan, lease: Lease,
                heartbeat: Heartbeat, job_id: str | None) -> str:
    store, entity = context.store, plan.entity

    def started(ckpt: Checkpoint) -> None:
        ckpt.job_id = job_id or ckpt.job_id

    state.set_state(entity, EntityState.running, change=started, lease=lease)
    try:
        source = context.dataverse(run.team_id, run.connection_id)
        marketo = context.marketo()
        with contextlib.closing(source) if hasattr(source, "close") else contextlib.nullcontext():
            _estimate(store, run, plan, source)
            outcome = _pipeline(context, state, plan, lease, heartbeat, source, marketo)
    except LeaseLost:
        raise
    except REDIS_UNAVAILABLE:
        raise  # not the sync's fault: the entity stays running, its lease lapses, the sweeper re-enqueues it
    except BotError as exc:
        outcome = Outcome("paused", exc.user_message)
    except Exception:
        log.exception("sync of %s for run %s failed", entity.value, run.id)
        outcome = Outcome("failed", UNEXPECTED)
    return _conclude(context, state, run, entity, lease, outcome)


def _pipeline(context: SyncContext, state: RunState, plan: EntityPlan, lease: Lease, heartbeat: Heartbeat,
              source: Any, marketo: Any) -> Outcome:
    notifier = context.notifier
    sync = EntitySync(
        plan, source, _writer(marketo, plan), state, lease, heartbeat.stop,
        writers=context.settings.SYNC_WRITERS or context.settings.MARKETO_MAX_CONCURRENCY,
        lookup=_lookup(marketo, plan), started_at=state.run().started_at,
        calls_made=lambda: int(getattr(marketo, "calls_made", 0)),
        on_progress=(lambda: _quietly(notifier.progress, state.team_id, state.run_id)) if notifier else (lambda: None),
    )
    outcome = sync.run()
    if outcome.kind == "stopped" and heartbeat.reason == "cancel":
        return Outcome("cancelled", "Cancelled.")
    if outcome.kind == "stopped":
        raise LeaseLost()
    return outcome


def _writer(marketo: Any, plan: EntityPlan) -> Callable[[list[dict]], list]:
    if plan.entity == Entity.account:
        return marketo.sync_companies
    return lambda records: marketo.sync_leads(records, plan.id_field)


def _lookup(marketo: Any, plan: EntityPlan) -> Callable[[list[str], list[str]], list[dict]] | None:
    """Reads persons back by their Dynamics id (companies cannot be read back: those batches are resent)."""
    if plan.entity == Entity.account:
        return None
    return lambda ids, fields: marketo.get_leads(plan.id_field, ids, fields)


def _estimate(store: Store, run: SyncRun, plan: EntityPlan, source: Any) -> None:
    progress = next(p for p in run.entities if p.entity == plan.entity)
    if progress.estimated:
        return
    estimated = int(source.count(plan.entity.value, filter_attribute=plan.filter_attribute))

    def put(current: SyncRun) -> SyncRun:
        next(p for p in current.entities if p.entity == plan.entity).estimated = estimated
        return current

    store.update_run(run.team_id, run.id, put)


def _conclude(context: SyncContext, state: RunState, run: SyncRun, entity: Entity, lease: Lease, outcome: Outcome) -> str:
    store = context.store
    if outcome.kind == "done":
        def finish(ckpt: Checkpoint) -> None:
            ckpt.delta_link = outcome.delta_link

        transition = state.set_state(entity, EntityState.done, change=finish, lease=lease)
        if outcome.delta_link:
            store.delta_links.put(run.team_id, run.connection_id, entity.value, outcome.delta_link)
    else:
        target = {"cancelled": EntityState.cancelled, "paused": EntityState.paused}.get(outcome.kind, EntityState.failed)
        transition = state.set_state(entity, target, outcome.message, lease=lease)
    settle(store, context.notifier, transition)
    if transition.changed and transition.run.status == RunStatus.finished:
        from bot.sync import incremental  # imported here: incremental builds on this module

        incremental.schedule(store, run.team_id, run.connection_id, context.settings)
    return outcome.kind


def settle(store: Store, notifier: Any | None, transition: Transition) -> None:
    """Act on a change of the run's status: notices, the connection's state, the active-run index."""
    if not transition.changed:
        return
    run = transition.run
    _sync_connection_state(store, run)
    if run.status in TERMINAL_RUN or run.status == RunStatus.paused:
        store.active_runs.remove(run.team_id, run.id)
    if notifier is None:
        return
    if run.status == RunStatus.paused:
        _quietly(notifier.paused, run.team_id, run.id)
    elif run.status in TERMINAL_RUN:
        _quietly(notifier.completed, run.team_id, run.id)


def _sync_connection_state(store: Store, run: SyncRun) -> None:
    def put(conn: Connection) -> Connection | None:
        if conn.run_id != run.id:
            return None
        conn.state = FLOW_STATE[run.status]
        return conn

    store.update_connection(run.team_id, run.connection_id, put)


def _quietly(action: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
    """Notices must never break the sync: log and go on."""
    try:
        action(*args, **kwargs)
    except Exception:
        log.exception("sync notice %s failed", getattr(action, "__name__", action))
