"""The App Home tab: where things stand, for whoever opens it, and its two buttons."""

from __future__ import annotations

import logging

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.container import Container
from bot.roles import CONNECT
from bot.slack_payloads import ActionPayload
from bot.steps import start, status
from bot.views import ids
from bot.views.common import help_text
from handlers.context import Ctx, Route

log = logging.getLogger(__name__)


def publish(container: Container, client: WebClient, body: dict) -> None:
    event = body.get("event") or {}
    team_id, user = body.get("team_id"), event.get("user")
    if not team_id or not user or event.get("tab", "home") != "home":
        return
    try:
        client.views_publish(user_id=user, view=status.home(container.store, team_id))
    except SlackApiError as exc:
        log.warning("could not publish App Home: %s", exc.response.get("error"))


def on_connect(ctx: Ctx[ActionPayload]) -> None:
    """The App Home "Connect" button: the same as `/connect-dynamics`."""
    ctx.ack()
    container = ctx.container
    ctx.later(start.open_flow, container.store, container.metadata, container.dataverse, ctx.client,
              ctx.team_id, ctx.user_id, ctx.payload.trigger_id)


def on_help(ctx: Ctx[ActionPayload]) -> None:
    ctx.ack()
    ctx.tell_after_ack(help_text())


ACTIONS = {ids.HOME_CONNECT_ACTION: Route(on_connect, CONNECT), ids.HOME_HELP_ACTION: Route(on_help)}
