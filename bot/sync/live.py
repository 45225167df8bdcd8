"""Changes in seconds: the jobs webhooks start, and the Dataverse webhooks a connection registers.

With `PUBLIC_URL` set, a connection going live (its initial sync finished) registers one Dataverse
webhook (a `serviceendpoints` row posting to `{PUBLIC_URL}/dynamics/webhook?team=…&connection=…` with a
random key in the `x-api-key` header, kept sealed in Redis) with a Create, Update and Delete step per
synced entity; a run that ends the syncing (cancelled, failed, paused) and `/connect-dynamics disable` remove it, `enable` makes it again.

A notification only enqueues the entity's incremental (Dynamics → Marketo) job at once: the cycle stays
the one code path that writes, and the one that catches what a lost delivery missed. Notifications
coalesce: while a job for the entity waits in the queue, more of them add nothing. Marketo's "Call
Webhook" enqueues "Sync Person to Microsoft" (`bot.sync.person`) or, for "Data Value Changes", the
Marketo → Dynamics write-back cycle.
"""

from __future__ import annotations

import logging
import secrets
import time
from urllib.parse import urlencode

from rq import Queue, Retry

from bot.config import Settings
from bot.dynamics.webhooks import WebhookRegistration
from bot.models import Entity, FlowState, RunStatus, SyncRun
from bot.store import Store
from bot.store.webhooks import DynamicsWebhook
from bot.sync.incremental import run_incremental
from bot.sync.ports import SyncServices
from bot.sync.webhook_removal import JOB_TIMEOUT, RESULT_TTL

log = logging.getLogger(__name__)

DYNAMICS_WEBHOOK_PATH = "/dynamics/webhook"
MARKETO_WEBHOOK_PATH = "/marketo/webhook"
SYNC_PERSON_JOB = "bot.sync.webhook_jobs.sync_person_job"
DYNAMICS_CHANGE_JOB = "bot.sync.webhook_jobs.dynamics_change_job"
REGISTER_JOB = "bot.sync.webhook_jobs.register_webhooks_job"
MESSAGES = ("Create", "Update", "Delete")
BUSY_WAIT_SECONDS = 60.0  # how long a notified change waits for a cycle already running on its entity
BUSY_POLL_SECONDS = 0.2


def changes_line(settings: Settings) -> str:
    """How changes reach the other side, for `/connect-dynamics status`."""
    minutes = f"{settings.INCREMENTAL_SYNC_MINUTES:g}"
    if settings.PUBLIC_URL:
        return f"Changes: webhooks + poll every {minutes} min"
    return f"Changes: polled every {minutes} min (no webhooks: PUBLIC_URL not set)"


def webhooks_line(settings: Settings, entities: list[str]) -> str | None:
    """What going live registers in Dynamics, for the plan (None without PUBLIC_URL)."""
    if not settings.PUBLIC_URL or not entities:
        return None
    return (f"Dataverse webhooks: at go-live, one service endpoint posting to {settings.PUBLIC_URL}"
            f"{DYNAMICS_WEBHOOK_PATH} and a {'/'.join(MESSAGES)} step for each of {', '.join(entities)}; "
            "removed by /connect-dynamics disable.")


def dynamics_webhook_url(public_url: str, team_id: str, connection_id: str) -> str:
    return f"{public_url}{DYNAMICS_WEBHOOK_PATH}?{urlencode({'team': team_id, 'connection': connection_id})}"


# -- enqueueing (web process) ----------------------------------------------------------------------------
def enqueue_sync_person(queue: Queue, team_id: str, connection_id: str, lead_id: int) -> str:
    """One job per delivery (two at once are made one by the person's lock); retried twice when Dynamics
    or Marketo fails mid-way (the retry finds the person as the failed attempt left it)."""
    job = queue.enqueue(SYNC_PERSON_JOB, team_id, connection_id, lead_id, job_timeout=JOB_TIMEOUT,
                        result_ttl=RESULT_TTL, failure_ttl=RESULT_TTL, retry=Retry(max=2),
                        description=f"sync person {lead_id} to Microsoft for {connection_id}")
    return job.id


def enqueue_change(store: Store, queue: Queue, team_id: str, connection_id: str, entity: str) -> bool:
    """Enqueue the entity's incremental cycle now, unless one already waits in the queue (False)."""
    job_id = store.webhooks.mark_change(team_id, connection_id, entity)
    if job_id is None:
        return False
    queue.enqueue(DYNAMICS_CHANGE_JOB, team_id, connection_id, entity, job_id=job_id, job_timeout=JOB_TIMEOUT,
                  result_ttl=RESULT_TTL, failure_ttl=RESULT_TTL,
                  description=f"notified {entity} changes for {connection_id}")
    return True


def enqueue_registration(queue: Queue, settings: Settings, team_id: str, connection_id: str) -> None:
    """Register the connection's Dataverse webhook in a job (when PUBLIC_URL is set)."""
    if settings.PUBLIC_URL:
        queue.enqueue(REGISTER_JOB, team_id, connection_id, job_timeout=JOB_TIMEOUT, result_ttl=RESULT_TTL,
                      failure_ttl=RESULT_TTL, retry=Retry(max=3),
                      description=f"register Dataverse webhooks for {connection_id}")


def follow_run(services: SyncServices, run: SyncRun) -> None:
    """A run ended: going live (a finished initial sync or re-read) registers the webhook. Its removal
    when a run ends otherwise is `webhook_removal.follow_end`, which every path settling a run calls."""
    if run.status == RunStatus.finished:
        enqueue_registration(services.queue, services.settings, run.team_id, run.connection_id)


# -- the jobs' work (worker) ----------------------------------------------------------------------------
def register(services: SyncServices, team_id: str, connection_id: str) -> str:
    """Register the webhook of a synced, enabled connection that has none; returns what happened."""
    store, public_url = services.store, services.settings.PUBLIC_URL
    connection = store.get_connection(team_id, connection_id)
    if not public_url or connection is None or connection.plan is None or connection.state != FlowState.synced \
            or not store.ongoing.enabled(team_id, connection_id):
        return "skipped"
    if store.webhooks.dynamics_webhook(team_id, connection_id) is not None:
        return "registered already"
    entities = [plan.entity.value for plan in connection.plan.entities]
    key = secrets.token_urlsafe(32)
    with services.dataverse(team_id, connection_id) as dataverse:
        made = dataverse.register_webhook(dynamics_webhook_url(public_url, team_id, connection_id), key, entities,
                                          MESSAGES, name=f"connect-dynamics {connection_id}")
        kept = DynamicsWebhook(endpoint_id=made.endpoint_id, step_ids=made.step_ids, key=key, entities=entities)
        if not store.webhooks.save_dynamics_webhook(team_id, connection_id, kept):
            dataverse.unregister_webhook(made)  # another job registered one meanwhile
            return "registered already"
    log.info("registered Dataverse webhooks for %s: %s", connection_id, ", ".join(entities))
    return "registered"


def unregister(services: SyncServices, team_id: str, connection_id: str) -> str:
    """Remove the connection's webhook from Dynamics, then forget it."""
    kept = services.store.webhooks.dynamics_webhook(team_id, connection_id)
    if kept is None:
        return "none"
    with services.dataverse(team_id, connection_id) as dataverse:
        dataverse.unregister_webhook(WebhookRegistration(endpoint_id=kept.endpoint_id, step_ids=kept.step_ids))
    services.store.webhooks.forget_dynamics_webhook(team_id, connection_id)
    log.info("removed the Dataverse webhooks of %s", connection_id)
    return "removed"


def apply_changes_now(services: SyncServices, team_id: str, connection_id: str, entity: Entity) -> str:
    """Run the entity's incremental cycle; while one is already running, wait for it to end (up to
    BUSY_WAIT_SECONDS) and run again, so a change notified mid-cycle is not left for the next interval."""
    services.store.webhooks.unmark_change(team_id, connection_id, entity.value)
    deadline = time.monotonic() + BUSY_WAIT_SECONDS
    while True:
        outcome = run_incremental(services, team_id, connection_id, entity)
        if outcome != "busy" or time.monotonic() > deadline:
            return outcome
        while services.store.sync_leased(team_id, connection_id, entity.value) and time.monotonic() < deadline:
            time.sleep(BUSY_POLL_SECONDS)
