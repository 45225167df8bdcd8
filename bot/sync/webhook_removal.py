"""Removing a connection's Dataverse webhook when its sync ends.

Kept apart from `live` (which imports the incremental cycle) so that every path that settles a run —
the entity jobs, a cancel of idle entities (`runs.request_cancel`), the sweeper giving up on a dead
worker — can enqueue the removal without an import cycle.
"""

from __future__ import annotations

from rq import Queue, Retry

from bot.models import RunStatus, SyncRun
from bot.store import Store
from bot.sync.checkpoint import BACKFILL

UNREGISTER_JOB = "bot.sync.webhook_jobs.unregister_webhooks_job"
JOB_TIMEOUT = 600
RESULT_TTL = 3600
# The connection follows its run: these leave it not syncing (a finished run registers the webhook again).
ENDS_SYNCING = frozenset({RunStatus.cancelled, RunStatus.failed, RunStatus.paused})


def enqueue_removal(store: Store, queue: Queue, team_id: str, connection_id: str) -> None:
    """Remove the connection's Dataverse webhook in a job, when it has one."""
    if store.webhooks.dynamics_webhook(team_id, connection_id) is not None:
        queue.enqueue(UNREGISTER_JOB, team_id, connection_id, job_timeout=JOB_TIMEOUT, result_ttl=RESULT_TTL,
                      failure_ttl=RESULT_TTL, retry=Retry(max=3),
                      description=f"remove Dataverse webhooks of {connection_id}")


def follow_end(store: Store, queue: Queue, run: SyncRun) -> None:
    """A run that leaves its connection not syncing removes the webhook; a backfill (columns added after
    go-live, the cycles going on meanwhile) never does."""
    if run.kind != BACKFILL and run.status in ENDS_SYNCING:
        enqueue_removal(store, queue, run.team_id, run.connection_id)
