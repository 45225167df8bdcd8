"""One entity of a run, as a worker executes it: take the entity's lease, run the pipeline, conclude.

The job's state is re-read once the lease is taken: while it waited, the job that held the lease may
have finished the entity, or the sweeper may have given it to a newer job; either way this one stops.

A worker asked to stop (SIGTERM, `bot.shutdown`) does not wait for the whole entity, which can take
hours: the pipeline stops at its next batch boundary (what was written is booked), a fresh job for the
entity is enqueued and the lease released, so another worker continues from the checkpoint at once.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from typing import Any

from bot import metrics, shutdown
from bot.errors import BotError
from bot.models import Entity, EntityPlan, RunStatus, SyncRun
from bot.store import REDIS_UNAVAILABLE, Lease, Store
from bot.sync import backfill, incremental, live
from bot.sync.backfill import UPDATE_ONLY
from bot.sync.bulk import BulkEntitySync
from bot.sync.checkpoint import (
    BACKFILL,
    LIVE_STATES,
    TERMINAL_RUN,
    Checkpoint,
    EntityState,
    RunState,
    Transition,
)
from bot.sync.custom_sync import custom_objects_due, enqueue_custom_objects
from bot.sync.engine import UNEXPECTED, Booking, EntitySync, MarketoTarget, Outcome, Settle
from bot.sync.lease import Heartbeat, LeaseLost
from bot.sync.links import linked_writes
from bot.sync.people import People
from bot.sync.ports import SyncServices
from bot.sync.runs import enqueue_entity
from bot.sync.settle import quietly, settle
from bot.sync.write_path import takes_bulk
from bot.sync.writers import batch_writer

log = logging.getLogger(__name__)

HEARTBEAT_POLL = 0.25


def _stale(state: RunState, entity: Entity, job_id: str | None) -> str | None:
    """"gone" or "superseded" when this job must not run the entity (any more); None when it may."""
    run = state.run()
    if run is None or run.status in TERMINAL_RUN:
        return "gone"
    ckpt = state.load(entity)
    if ckpt.state not in LIVE_STATES or (job_id and ckpt.job_id and ckpt.job_id != job_id):
        return "superseded"
    return None


def run_entity(services: SyncServices, team_id: str, run_id: str, entity: Entity, *,
               job_id: str | None = None) -> str:
    """Run one entity's initial sync from its checkpoint. Returns how it ended (for logs and tests)."""
    store, settings = services.store, services.settings
    state = RunState(store, team_id, run_id)
    stale = _stale(state, entity, job_id)
    if stale:
        return stale
    if state.cancel_requested():
        _settled(services, state.set_state(entity, EntityState.cancelled, "Cancelled."))
        return "cancelled"
    run = state.run()
    if run is None:
        return "gone"
    connection = store.get_connection(team_id, run.connection_id)
    plan = connection.plan.for_entity(entity) if connection and connection.plan else None
    if plan is None:
        _settled(services, state.set_state(entity, EntityState.failed, "The field plan for this sync is gone."))
        return "failed"
    lease = state.lease(run.connection_id, entity, settings.SYNC_LEASE_SECONDS, owner=job_id or "", kind=run.kind)
    if not lease.take(wait=settings.SYNC_LEASE_SECONDS * 1.5):
        return "busy"  # a live job holds this entity; the sweeper keeps watching it
    heartbeat = Heartbeat(lease, HEARTBEAT_POLL, state.cancel_requested, interrupted=shutdown.requested)
    heartbeat.start()  # from here on: sign-in and counting can take longer than the lease
    try:
        stale = _stale(state, entity, job_id)  # decided again: the lease holder may have finished meanwhile
        if stale:
            return stale
        ended = _run_locked(services, state, state.run() or run, plan, lease, heartbeat, job_id)
        log.info("sync of %s ended: %s", entity.value, ended)
        return ended
    except LeaseLost:
        return "lost"
    finally:
        heartbeat.close()
        lease.release()


def _run_locked(services: SyncServices, state: RunState, run: SyncRun, plan: EntityPlan, lease: Lease,
                heartbeat: Heartbeat, job_id: str | None) -> str:
    entity = plan.entity

    def started(ckpt: Checkpoint) -> None:
        ckpt.job_id = job_id or ckpt.job_id

    state.set_state(entity, EntityState.running, change=started, lease=lease)
    try:
        source = services.dataverse(run.team_id, run.connection_id)
        marketo = linked_writes(services, run.team_id, run.connection_id, plan, source)
        with contextlib.closing(source) if hasattr(source, "close") else contextlib.nullcontext():
            _estimate(services.store, run, plan, source)
            outcome = _pipeline(services, state, plan, lease, heartbeat, source, marketo)
    except LeaseLost:
        raise
    except REDIS_UNAVAILABLE:
        raise  # not the sync's fault: the entity stays running, its lease lapses, the sweeper re-enqueues it
    except BotError as exc:
        outcome = Outcome("paused", exc.user_message)
    except Exception:
        log.exception("sync of %s for run %s failed", entity.value, run.id)
        outcome = Outcome("failed", UNEXPECTED)
    if outcome.kind == "handed over":
        return _hand_over(services, state, entity)
    return _conclude(services, state, run, entity, lease, outcome)


def _hand_over(services: SyncServices, state: RunState, entity: Entity) -> str:
    """The worker is stopping: a fresh job continues the entity from its checkpoint (as the sweeper
    revives one), enqueued while this job still holds the lease, so nothing else revives it meanwhile."""
    job_id = enqueue_entity(services.store, services.queue, state.team_id, state.run_id, entity)
    metrics.SYNC_JOBS_HANDED_OVER.inc()
    log.info("worker stopping: %s of run %s handed over to job %s at its checkpoint", entity.value,
             state.run_id, job_id)
    return "handed over"


def _pipeline(services: SyncServices, state: RunState, plan: EntityPlan, lease: Lease, heartbeat: Heartbeat,
              source: Any, marketo: Any) -> Outcome:
    notifier = services.notifier
    settings = services.settings
    run = state.run()
    booking = Booking(
        state, lease, heartbeat.stop, started_at=run.started_at if run else 0.0,
        on_progress=(lambda: quietly(notifier.progress, state.team_id, state.run_id)) if notifier else (lambda: None),
    )
    written, action = plan, "createOrUpdate"
    if run is not None and run.kind == BACKFILL:
        written, action = backfill.written_plan(plan, run.backfill_fields.get(plan.entity.value, [])), UPDATE_ONLY
    sync: EntitySync | BulkEntitySync
    if takes_bulk(plan.entity, _estimated(run, plan.entity), settings.BULK_IMPORT_MIN_RECORDS):
        sync = BulkEntitySync(written, source, marketo, booking, services.store.bulk_import_slots(),
                              select=plan.select, poll_seconds=settings.BULK_IMPORT_POLL_SECONDS,
                              part_bytes=settings.BULK_IMPORT_PART_BYTES,
                              settle=_settle(services, marketo, state, action), action=action)
    else:
        target = MarketoTarget(batch_writer(marketo, written, action, source), _lookup(marketo, written),
                               calls_made=lambda: int(getattr(marketo, "calls_made", 0)),
                               settle=_settle(services, marketo, state, action))
        sync = EntitySync(written, source, target, booking, select=plan.select,
                          writers=settings.SYNC_WRITERS or settings.MARKETO_MAX_CONCURRENCY)
    outcome = sync.run()
    if outcome.kind == "stopped" and heartbeat.reason == "cancel":
        return Outcome("cancelled", "Cancelled.")
    if outcome.kind == "stopped" and heartbeat.reason == "shutdown":
        return Outcome("handed over")
    if outcome.kind == "stopped":
        raise LeaseLost()
    return outcome


def _settle(services: SyncServices, marketo: Any, state: RunState, action: str) -> Settle:
    """One person per human (`bot.sync.people`); a backfill only adds columns to persons that exist."""
    run = state.run()
    connection = services.store.get_connection(state.team_id, run.connection_id) if run else None
    if connection is None or action == UPDATE_ONLY:
        return lambda prepared: None
    people = People(marketo, services.store, connection)
    return lambda prepared: people.settle(prepared.plan, prepared.records, prepared.keys, prepared.identities)


def _estimated(run: SyncRun | None, entity: Entity) -> int:
    return next((p.estimated for p in run.entities if p.entity == entity), 0) if run else 0


def _lookup(marketo: Any, plan: EntityPlan) -> Callable[[list[str], list[str]], list[dict]] | None:
    """Reads persons back by their Dynamics id (companies and opportunities are not read back: those batches
    are resent)."""
    if plan.entity in (Entity.account, Entity.opportunity):
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


def _conclude(services: SyncServices, state: RunState, run: SyncRun, entity: Entity, lease: Lease,
              outcome: Outcome) -> str:
    store = services.store
    if outcome.kind == "done":
        def finish(ckpt: Checkpoint) -> None:
            ckpt.delta_link = outcome.delta_link

        transition = state.set_state(entity, EntityState.done, change=finish, lease=lease)
        if outcome.delta_link and run.kind == BACKFILL:
            store.delta_links.offer(run.team_id, run.connection_id, entity.value, outcome.delta_link)
        elif outcome.delta_link:
            store.delta_links.put(run.team_id, run.connection_id, entity.value, outcome.delta_link)
    else:
        target = {"cancelled": EntityState.cancelled, "paused": EntityState.paused}.get(outcome.kind, EntityState.failed)
        transition = state.set_state(entity, target, outcome.message, lease=lease)
    finished = transition.changed and transition.run.status == RunStatus.finished and run.kind != BACKFILL
    if outcome.kind == "done" and run.kind != BACKFILL and custom_objects_due(store, transition.run, entity, finished):
        enqueue_custom_objects(services.queue, run.team_id, run.connection_id)
    _settled(services, transition)
    if finished:
        incremental.schedule(store, run.team_id, run.connection_id, services.settings)
    return outcome.kind


def _settled(services: SyncServices, transition: Transition) -> None:
    """Act on a change of the run's status (`settle`, which removes the connection's Dataverse webhook when
    it stops syncing), and register the webhook when a sync finishes (`live.follow_run`)."""
    settle(services.store, services.notifier, transition, services.queue)
    if transition.changed and transition.run.kind != BACKFILL:
        live.follow_run(services, transition.run)
