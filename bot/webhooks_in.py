"""The two webhook endpoints of `serve`: what Marketo's "Call Webhook" and Dataverse's change
notifications send, checked, and turned into queued jobs (ids only). Nothing slow happens here: each
answer comes in milliseconds, the work runs on the workers (`bot.sync.live`).

`POST /marketo/webhook` — header `X-Webhook-Token` must equal `MARKETO_WEBHOOK_SECRET` (404 while it is
unset, 401 when missing or wrong); body `{"leadId": <id>}` enqueues "Sync Person to Microsoft",
`{"leadId": <id>, "event": "changed"}` (a "Data Value Changes" campaign) the Marketo → Dynamics cycle.
The connection is the one holding this Marketo instance's Dynamics lock, or with several Slack teams
sharing the instance, the synced connection of the team named by `?team=T…`.

`POST /dynamics/webhook?team=…&connection=…` — the `x-api-key` header must equal the key registered
for that connection (401 otherwise); a change made by the connection's sync user is an echo of our own
write and is skipped; any other enqueues the entity's incremental cycle, coalesced.

Slack does not sign these requests, so they skip the Slack guard; they never answer 5xx.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from rq import Queue

from bot.config import Settings
from bot.dynamics.webhooks import DataverseNotification, key_matches
from bot.models import Connection, FlowState
from bot.store import Store
from bot.sync import live, write_back

MARKETO_TOKEN_HEADER = "x-webhook-token"
MARKETO_MAX_BODY = 64 * 1024
DATAVERSE_MAX_BODY = 512 * 1024  # Dataverse trims a notification to 256 KB
_SLACK_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class MarketoWebhook(BaseModel):
    """The body of Marketo's call: template `{"leadId": {{lead.Id}}}` (plus `"event":"changed"`)."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    lead_id: int = Field(alias="leadId", gt=0, strict=True)
    event: Literal["sync", "changed"] = "sync"


@dataclass(frozen=True)
class Answer:
    """The HTTP answer (a non-empty JSON body: Marketo counts an empty one as an error) and the
    `outcome` label counted in `webhooks`."""

    status: int
    outcome: str
    body: dict[str, str] = field(default_factory=dict)


def rejected(status: int, reason: str) -> Answer:
    return Answer(status, "rejected", {"error": reason})


def _accepted(outcome: str, detail: str) -> Answer:
    return Answer(202, outcome, {"status": outcome, "detail": detail})


class WebhookIntake:
    def __init__(self, store: Store, queue: Queue, settings: Settings) -> None:
        self._store, self._queue, self._settings = store, queue, settings

    # -- Marketo -----------------------------------------------------------------------------------------
    def marketo_refusal(self, headers: Mapping[str, str]) -> Answer | None:
        """Checked before the body is read: no secret set (404), a missing or wrong token (401)."""
        secret = self._settings.secret("MARKETO_WEBHOOK_SECRET")
        if not secret:
            return rejected(404, "Marketo webhooks are off: MARKETO_WEBHOOK_SECRET is not set")
        received = headers.get(MARKETO_TOKEN_HEADER, "")
        if not hmac.compare_digest(received.encode(), secret.encode()):
            return rejected(401, "missing or wrong X-Webhook-Token")
        return None

    def marketo(self, query: Mapping[str, str], body: bytes) -> Answer:
        try:
            call = MarketoWebhook.model_validate_json(body)
        except ValidationError:
            return rejected(400, 'the body must be JSON like {"leadId": 123}')
        team = query.get("team")
        if team is not None and not _SLACK_ID.match(team):
            return rejected(400, "team must be a Slack team id")
        connection = self._marketo_connection(team)
        if connection is None:
            return rejected(404, "no synced Dynamics connection for this Marketo instance"
                            + (f" in team {team}" if team else ""))
        if call.event == "changed":
            enqueued = write_back.enqueue_write_back(self._queue, connection.team_id, connection.id)
            return _accepted("accepted" if enqueued is not None else "coalesced", "Marketo → Dynamics cycle")
        live.enqueue_sync_person(self._queue, connection.team_id, connection.id, call.lead_id)
        return _accepted("accepted", "Sync Person to Microsoft")

    def _marketo_connection(self, team: str | None) -> Connection | None:
        if team is not None:
            connection = self._store.active_connection(team)
        else:
            lock = self._store.instance_lock()
            if lock is None:
                return None
            connection = self._store.get_connection(lock.team_id, lock.connection_id) if lock.connection_id \
                else self._store.active_connection(lock.team_id)
        return connection if connection is not None and connection.state == FlowState.synced else None

    # -- Dataverse ---------------------------------------------------------------------------------------
    def dynamics(self, headers: Mapping[str, str], query: Mapping[str, str], body: bytes) -> Answer:
        team, connection_id = query.get("team", ""), query.get("connection", "")
        if not (_SLACK_ID.match(team) and _SLACK_ID.match(connection_id)):
            return rejected(401, "unknown webhook")
        kept = self._store.webhooks.dynamics_webhook(team, connection_id)
        if kept is None or not key_matches(headers, kept.key):
            return rejected(401, "unknown webhook or wrong key")
        try:
            notification = DataverseNotification.model_validate_json(body)
        except ValidationError:
            return rejected(400, "not a Dataverse notification")
        connection = self._store.get_connection(team, connection_id)
        entity = notification.primary_entity_name
        if connection is None or connection.state != FlowState.synced or entity not in kept.entities:
            return _accepted("skipped", "not synced")
        if connection.sync_user_id and notification.made_by(connection.sync_user_id):
            return _accepted("skipped", "made by the sync user")
        enqueued = live.enqueue_change(self._store, self._queue, team, connection_id, entity)
        return _accepted("accepted" if enqueued else "coalesced", f"{entity} cycle")
