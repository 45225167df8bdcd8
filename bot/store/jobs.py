"""RQ's side of the store: the queues and workers of the product.

Every RQ key starts with `{REDIS_KEY_PREFIX}:rq:` (see `bot.store.rq_prefix`); queue names carry
the prefix as well (`{prefix}-sync`), so deployments that share a Redis database and an RQ
prefix still keep their queues apart.
"""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Callable
from typing import Any, TypeVar

import redis
from rq import Queue, SimpleWorker
from rq.job import Job
from rq.worker import WorkerStatus

from bot.store.connection import REDIS_UNAVAILABLE
from bot.store.persistence import warn_without_persistence

T = TypeVar("T")
log = logging.getLogger(__name__)


def queue(client: redis.Redis, prefix: str, name: str) -> Queue:
    return Queue(f"{prefix}-{name}", connection=client)


def worker(queues: list[Queue], client: redis.Redis) -> PatientWorker:
    """The job runs in the worker process (no fork per job): see `bot.worker`. Made once Redis
    answers (RQ asks Redis for the worker's address as it builds one)."""
    return patiently(lambda: PatientWorker(queues, connection=client), log, "worker start-up")


def patiently(step: Callable[[], T], logger: logging.Logger, what: str, *, first_wait: float = 0.5,
              factor: float = 2.0, max_wait: float = 60.0) -> T:
    """Run `step` until Redis lets it finish, waiting `factor` times longer after each failure, up
    to `max_wait` seconds."""
    wait = first_wait
    while True:
        try:
            return step()
        except REDIS_UNAVAILABLE as exc:
            logger.error("%s: Redis is unreachable (%s); retrying in %.1f s", what, exc, wait)
            time.sleep(wait)
            wait = min(wait * factor, max_wait)


class PatientWorker(SimpleWorker):
    """RQ's `SimpleWorker`, made to outlive Redis outages.

    RQ 3 retries a Redis error only inside its dequeue loop; one anywhere else in `work()`
    (registering, the suspension check, registry maintenance, a heartbeat, a job's bookkeeping)
    ends the process with "unhandled exception, quitting". If every worker quits that way, nothing
    is left to resume the syncs. Here each of those steps waits for Redis with capped exponential
    backoff (RQ's own `exponential_backoff_factor` and `max_connection_wait_time`) and carries on.

    A job that meets the outage ends there (a sync job stops at its batch boundary; see
    `bot.sync.entity_job`); once Redis answers again it is recorded as failed, and its work continues
    from its checkpoint in a new job (the sweeper re-enqueues an entity whose lease lapsed).
    """

    first_connection_wait = 0.5

    def bootstrap(self, *args: Any, **kwargs: Any) -> None:
        self._patiently(lambda: warn_without_persistence(self.connection))
        super().bootstrap(*args, **kwargs)

    def register_birth(self) -> None:
        self._patiently(super().register_birth)

    def subscribe(self) -> None:
        self._patiently(super().subscribe)

    def check_for_suspension(self, burst: bool) -> None:
        self._patiently(lambda: super(PatientWorker, self).check_for_suspension(burst))

    def run_maintenance_tasks(self) -> None:
        self._patiently(super().run_maintenance_tasks)

    def heartbeat(self, timeout: int | None = None, pipeline: Any = None) -> None:
        if pipeline is not None:  # queued on a caller's pipeline: the caller's execute() may fail
            super().heartbeat(timeout, pipeline=pipeline)
            return
        self._patiently(lambda: super(PatientWorker, self).heartbeat(timeout))

    def set_state(self, state: str, pipeline: Any = None) -> None:
        if pipeline is not None:
            super().set_state(state, pipeline=pipeline)
            return
        self._patiently(lambda: super(PatientWorker, self).set_state(state))

    def execute_job(self, job: Job, queue: Queue) -> None:
        try:
            super().execute_job(job, queue)
        except REDIS_UNAVAILABLE as exc:
            self.log.warning("Worker %s: Redis became unreachable during job %s (%s); the job ends here",
                             self.name, job.id, exc)
            detail = "".join(traceback.format_exception(exc))
            self._patiently(self.connection.ping)
            self._patiently(lambda: self._record_interrupted(job, queue, detail))

    def teardown(self) -> None:
        try:
            super().teardown()
        except REDIS_UNAVAILABLE as exc:  # stopping anyway: Redis forgets this worker when its key expires
            self.log.warning("Worker %s: could not unregister, Redis is unreachable (%s)", self.name, exc)

    def _record_interrupted(self, job: Job, queue: Queue, detail: str) -> None:
        execution = next((e for e in self.executions.values() if e.job_id == job.id), None)
        self.handle_job_failure(job, queue, exc_string=detail, execution=execution)
        self.set_state(WorkerStatus.IDLE)

    def _patiently(self, step: Callable[[], T]) -> T:
        return patiently(step, self.log, f"Worker {self.name}", first_wait=self.first_connection_wait,
                         factor=self.exponential_backoff_factor, max_wait=self.max_connection_wait_time)
