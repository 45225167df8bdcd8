"""The App Home tab: where things stand, for whoever opens it, its buttons, and the workspace
settings a workspace admin edits there."""

from __future__ import annotations

import logging

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.container import Container
from bot.roles import CONNECT
from bot.slack_payloads import ActionPayload, ViewPayload
from bot.steps import start, workspace
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
        client.views_publish(user_id=user, view=workspace.home(container.store, container.workspaces, team_id))
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


def on_settings(ctx: Ctx[ActionPayload]) -> None:
    """Edit settings: who may is the step's rule (Slack workspace admins too, not only Marketo admins)."""
    ctx.ack()
    container = ctx.container
    ctx.tell_later(workspace.open_settings, container.workspaces, container.roles, ctx.client, ctx.team_id, ctx.user_id,
              ctx.payload.trigger_id)


def on_settings_submit(ctx: Ctx[ViewPayload]) -> None:
    form = workspace.SettingsForm.of(ctx.payload.view.values())
    ctx.ack()
    container = ctx.container
    ctx.tell_later(workspace.save_settings, container.store, container.workspaces, container.roles, ctx.client,
                   ctx.team_id, ctx.user_id, form)


ACTIONS = {ids.HOME_CONNECT_ACTION: Route(on_connect, CONNECT), ids.HOME_HELP_ACTION: Route(on_help),
           ids.HOME_SETTINGS_ACTION: Route(on_settings)}
VIEWS = {ids.SETTINGS_CALLBACK: Route(on_settings_submit)}
