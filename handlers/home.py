"""The App Home tab: where things stand, for whoever opens it."""

from __future__ import annotations

import logging

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.runtime import Runtime
from bot.views import ids
from bot.views.common import help_text, home_view
from handlers.commands import open_step1
from handlers.context import Ctx

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


def on_connect(ctx: Ctx) -> None:
    """The App Home "Connect" button: the same as `/connect-dynamics`, for admins."""
    ctx.runtime.roles.require_admin(ctx.user_id)
    ctx.ack()
    ctx.later(open_step1, ctx.runtime, ctx.client, ctx.team_id, ctx.user_id, ctx.action.trigger_id)


def on_help(ctx: Ctx) -> None:
    ctx.ack()
    ctx.tell_after_ack(help_text())


ACTIONS = {ids.HOME_CONNECT_ACTION: on_connect, ids.HOME_HELP_ACTION: on_help}
