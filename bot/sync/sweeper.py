"""Re-enqueue sync jobs whose worker died, so a sync resumes with no human action.

RQ (3.x, `StartedJobRegistry.cleanup`) notices a dead worker only when the job's execution
heartbeat expires (job monitoring interval + 60 s for a forking worker, the job timeout + 60 s
for a `SimpleWorker`), and then moves the job to the `FailedJobRegistry` as abandoned without
running it again unless it has retries left. We do not wait for that: each running entity holds
a lease renewed every few seconds (see `lease.Heartbeat`), so an entity whose checkpoint says
it is running but whose lease has lapsed, or that is queued but whose job is neither waiting in
the queue nor just starting, has lost its worker. The sweeper enqueues a fresh job for it, which continues
from the checkpoint. It also runs RQ's own registry cleanup so abandoned jobs are recorded as
failed; those superseded jobs are never re-run (sync jobs carry no RQ retry policy).

Any number of workers run the sweeper; a short lease (`Store.sweep_lease`) lets one sweep at a time.
"""

from __future__ import annotations

import logging
import time

from rq import Queue
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus
from rq.registry import StartedJobRegistry

from bot import metrics
from bot.notify import Notifier
from bot.store import Store
from bot.sync.checkpoint import LIVE_STATES, TERMINAL_RUN, EntityState, RunState, lease_part
from bot.sync.runs import enqueue_entity
from bot.sync.settle import settle

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 25
WAITING = frozenset({JobStatus.QUEUED, JobStatus.DEFERRED, JobStatus.SCHEDULED, JobStatus.CREATED})
GAVE_UP = ("The sync's worker stopped {n} times in a row (out of memory, or the machine restarted?). "
           "It is paused at its last checkpoint: check the workers, then press Resume.")


def job_is_pending(queue: Queue, job_id: str | None, grace: float) -> bool:
    """True when the job waits in the queue or started less than `grace` seconds ago."""
    if not job_id:
        return False
    try:
        job = Job.fetch(job_id, connection=queue.connection)
    except NoSuchJobError:
        return False
    status = job.get_status(refresh=False)
    if status in WAITING:
        return True
    if status == JobStatus.STARTED and job.started_at is not None:
        return time.time() - job.started_at.timestamp() < grace
    return False


def sweep(store: Store, queue: Queue, *, lease_seconds: float, notifier: Notifier | None = None) -> list[str]:
    """One pass over the active runs; returns the ids of the jobs it enqueued."""
    lock = store.sweep_lease(max(lease_seconds, 1.0))
    if not lock.take():
        return []  # another worker is sweeping
    try:
        StartedJobRegistry(queue=queue).cleanup()
        enqueued: list[str] = []
        for team_id, run_id in store.active_runs.all():
            enqueued += _sweep_run(store, queue, team_id, run_id, lease_seconds, notifier)
        return enqueued
    finally:
        lock.release()


def _sweep_run(store: Store, queue: Queue, team_id: str, run_id: str, lease_seconds: float,
               notifier: Notifier | None) -> list[str]:
    state = RunState(store, team_id, run_id)
    run = state.run()
    if run is None or run.status in TERMINAL_RUN:
        store.active_runs.remove(team_id, run_id)
        return []
    enqueued = []
    grace = lease_seconds * 2 + 5
    for progress in run.entities:
        ckpt = state.load(progress.entity)
        if ckpt.state not in LIVE_STATES:
            continue
        if store.sync_leased(team_id, run.connection_id, lease_part(run.kind, progress.entity)):
            continue
        # Only a job holding the lease sets "running", so running without a lease means its job is gone;
        # a queued entity's job may still be waiting in the queue or just starting.
        if ckpt.state == EntityState.queued and job_is_pending(queue, ckpt.job_id, grace):
            continue
        if ckpt.attempts >= MAX_ATTEMPTS:
            transition = state.set_state(progress.entity, EntityState.paused, GAVE_UP.format(n=ckpt.attempts))
            settle(store, notifier, transition, queue)
            continue
        log.warning("sync job %s for %s of run %s lost its worker; re-enqueueing", ckpt.job_id,
                    progress.entity.value, run_id)
        enqueued.append(enqueue_entity(store, queue, team_id, run_id, progress.entity))
        metrics.SYNC_JOBS_REVIVED.inc()
    return enqueued
