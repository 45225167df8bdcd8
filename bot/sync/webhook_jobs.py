"""The RQ job functions webhooks start (ids only), run with the worker's installed `SyncServices`."""

from __future__ import annotations

from bot.logging_setup import sync_context
from bot.models import Entity
from bot.sync import live
from bot.sync.entry import installed
from bot.sync.person import sync_person


def sync_person_job(team_id: str, connection_id: str, lead_id: int) -> str:
    with sync_context(team_id=team_id, connection_id=connection_id, entity=Entity.lead.value):
        return sync_person(installed(), team_id, connection_id, lead_id)


def dynamics_change_job(team_id: str, connection_id: str, entity: str) -> str:
    with sync_context(team_id=team_id, connection_id=connection_id, entity=entity):
        return live.apply_changes_now(installed(), team_id, connection_id, Entity(entity))


def register_webhooks_job(team_id: str, connection_id: str) -> str:
    with sync_context(team_id=team_id, connection_id=connection_id):
        return live.register(installed(), team_id, connection_id)


def unregister_webhooks_job(team_id: str, connection_id: str) -> str:
    with sync_context(team_id=team_id, connection_id=connection_id):
        return live.unregister(installed(), team_id, connection_id)
