"""The App Home tab: where things stand, for whoever opens it."""

from __future__ import annotations

import logging

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.runtime import Runtime
from bot.views.common import home_view

log = logging.getLogger(__name__)


def publish(runtime: Runtime, client: WebClient, body: dict) -> None:
    event = body.get("event") or {}
    team_id, user = body.get("team_id"), event.get("user")
    if not team_id or not user or event.get("tab", "home") != "home":
        return
    connection = runtime.store.active_connection(team_id)
    run = runtime.store.get_run(team_id, connection.run_id) if connection and connection.run_id else None
    try:
        client.views_publish(user_id=user, view=home_view(connection, run))
    except SlackApiError as exc:
        log.warning("could not publish App Home: %s", exc.response.get("error"))
