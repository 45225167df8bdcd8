"""What the webhooks keep in Redis: the per-person lock of "Sync Person to Microsoft", the Dataverse
webhook registered for a connection (with its key, sealed like the credentials), and the marks that
coalesce change notifications into one queued job per connection and entity."""

from __future__ import annotations

import uuid

import redis
from pydantic import BaseModel

from bot.crypto import SecretBox, SecretUnreadable
from bot.store.keys import Keys
from bot.store.locks import Lease

CHANGE_MARK_SECONDS = 600  # a mark whose job never ran (its queue was emptied) stops coalescing after this


class DynamicsWebhook(BaseModel):
    """A registration made at go-live: the `serviceendpoints` row, its steps, and the key Dataverse sends."""

    endpoint_id: str
    step_ids: list[str]
    key: str
    entities: list[str]


class WebhookRecords:
    def __init__(self, client: redis.Redis, keys: Keys, box: SecretBox) -> None:
        self._redis, self._keys, self._box = client, keys, box

    def person_lease(self, team_id: str, connection_id: str, lead_id: int, ttl: float, owner: str = "") -> Lease:
        return Lease(self._redis, self._keys.person_lock(team_id, connection_id, lead_id), ttl, owner=owner, poll=0.05)

    # -- the Dataverse webhook of a connection ----------------------------------------------------------
    def save_dynamics_webhook(self, team_id: str, connection_id: str, webhook: DynamicsWebhook) -> bool:
        """Keep the registration unless one is kept already (then False: the caller removes its own)."""
        sealed = self._box.seal(webhook.model_dump_json().encode())
        return bool(self._redis.set(self._keys.dynamics_webhook(team_id, connection_id), sealed, nx=True))

    def dynamics_webhook(self, team_id: str, connection_id: str) -> DynamicsWebhook | None:
        """The registration, or None when there is none or it was sealed with a key no longer configured."""
        sealed = self._redis.get(self._keys.dynamics_webhook(team_id, connection_id))
        if not sealed:
            return None
        try:
            return DynamicsWebhook.model_validate_json(self._box.open(sealed))
        except SecretUnreadable:
            return None

    def forget_dynamics_webhook(self, team_id: str, connection_id: str) -> None:
        self._redis.delete(self._keys.dynamics_webhook(team_id, connection_id))

    # -- coalescing change notifications ----------------------------------------------------------------
    def mark_change(self, team_id: str, connection_id: str, entity: str) -> str | None:
        """A fresh job id when no job for this entity waits in the queue (the caller enqueues it), else None."""
        job_id = f"dv-change-{connection_id}-{entity}-{uuid.uuid4().hex[:12]}"
        key = self._keys.change_queued(team_id, connection_id, entity)
        return job_id if self._redis.set(key, job_id, nx=True, ex=CHANGE_MARK_SECONDS) else None

    def unmark_change(self, team_id: str, connection_id: str, entity: str) -> None:
        """The job starts: a notification from now on needs a job of its own."""
        self._redis.delete(self._keys.change_queued(team_id, connection_id, entity))
