"""One Bolt listener per kind of request, routing by id through the handler modules' route tables.

Bolt would run every registered listener's matcher on each request; a dict lookup is
cheaper and lets an unknown or stale id (a button from an old message, an older version
of the bot) be acknowledged with 200 and a "no longer valid" note instead of a 404.
Each route declares who may use it; `_dispatch` checks that before the handler runs.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Any, TypeVar

from pydantic import BaseModel
from slack_bolt import Ack, App, BoltContext
from slack_sdk import WebClient

from bot.container import Container
from bot.errors import BotError
from bot.slack_payloads import GUARDED_PAYLOAD, ActionPayload, SlashCommand, SuggestionPayload, ViewPayload
from bot.steps.status import unknown_subcommand
from bot.views.common import error_modal, info_modal
from bot.views.kit import escape
from handlers import approvals, brake, commands, credentials, fields, home, sync
from handlers.context import Ctx, P, Route, user_message

log = logging.getLogger(__name__)

STALE_BUTTON = "This button is no longer valid (it belongs to an older message or flow). Run /connect-dynamics status to see where things stand."

ACTIONS: dict[str, Route[ActionPayload]] = {
    **credentials.ACTIONS, **fields.ACTIONS, **approvals.ACTIONS, **sync.ACTIONS, **home.ACTIONS,
    **brake.ACTIONS,
}
VIEWS: dict[str, Route[ViewPayload]] = {**credentials.VIEWS, **fields.VIEWS, **approvals.VIEWS, **home.VIEWS}
OPTIONS: dict[str, Route[SuggestionPayload]] = {**fields.OPTIONS}

M = TypeVar("M", bound=BaseModel)


def _payload(model: type[M], context: BoltContext, body: dict) -> M:
    """The web front's guard already parsed the request; Socket Mode (no guard) parses it here."""
    guarded = context.get(GUARDED_PAYLOAD)
    return guarded if isinstance(guarded, model) else model.model_validate(body)


Refuse = Callable[[Ctx[Any], str], None]
"""How a request of one kind is answered with a message when nothing was acked yet."""


def _refuse_command(ctx: Ctx[SlashCommand], text: str) -> None:
    ctx.ack(text=escape(text))


def _refuse_action(ctx: Ctx[ActionPayload], text: str) -> None:
    ctx.ack()
    ctx.tell_after_ack(text)


def _refuse_view(ctx: Ctx[ViewPayload], text: str) -> None:
    ctx.ack(response_action="update", view=error_modal(text))


def _refuse_options(ctx: Ctx[SuggestionPayload], text: str) -> None:
    ctx.ack(options=[])


def _dispatch(route: Route[P], ctx: Ctx[P], refuse: Refuse) -> None:
    """Check the route's permission, run its handler; a BotError becomes its plain message, anything
    else a generic one (and a log line)."""
    try:
        ctx.container.roles.for_team(ctx.team_id).check(ctx.user_id, route.permission)
        route.handler(ctx)
    except Exception as exc:  # noqa: BLE001 - the user gets a plain message, never a trace
        if not isinstance(exc, BotError):
            log.exception("handler %s failed", getattr(route.handler, "__name__", route.handler))
        text = user_message(exc)
        if ctx.ack.response is not None:  # already acked: say it where the user is
            ctx.tell_after_ack(text)
        else:
            refuse(ctx, text)


def register(app: App, container: Container) -> None:
    @app.command(re.compile(r"^/"))
    def on_command(ack: Ack, body: dict, context: BoltContext, client: WebClient) -> None:
        ctx = Ctx(container, ack, client, _payload(SlashCommand, context, body))
        name = commands.subcommand(ctx.payload.text)
        route = commands.SUBCOMMANDS.get(name)
        if route is None:
            ack(text=unknown_subcommand(name))
            return
        _dispatch(route, ctx, _refuse_command)

    @app.action(re.compile(r".*"))
    def on_action(ack: Ack, body: dict, context: BoltContext, client: WebClient) -> None:
        ctx = Ctx(container, ack, client, _payload(ActionPayload, context, body))
        action_id = ctx.payload.action.action_id
        route = ACTIONS.get(action_id)
        if route is None:
            ack()
            if not action_id.startswith("noop"):
                ctx.tell_after_ack(STALE_BUTTON)
            return
        _dispatch(route, ctx, _refuse_action)

    @app.view(re.compile(r".*"))
    def on_view(ack: Ack, body: dict, context: BoltContext, client: WebClient) -> None:
        ctx = Ctx(container, ack, client, _payload(ViewPayload, context, body))
        route = VIEWS.get(ctx.payload.view.callback_id)
        if route is None:
            ack(response_action="update", view=info_modal("No longer valid", STALE_BUTTON))
            return
        _dispatch(route, ctx, _refuse_view)

    @app.view_closed(re.compile(r".*"))
    def on_view_closed(ack: Ack) -> None:
        ack()

    @app.options(re.compile(r".*"))
    def on_options(ack: Ack, body: dict, context: BoltContext, client: WebClient) -> None:
        ctx = Ctx(container, ack, client, _payload(SuggestionPayload, context, body))
        route = OPTIONS.get(ctx.payload.action_id)
        if route is None:
            ack(options=[])
            return
        _dispatch(route, ctx, _refuse_options)

    @app.event("app_home_opened")
    def on_home(body: dict, client: WebClient) -> None:
        home.publish(container, client, body)

    @app.error
    def on_error(error: Exception) -> None:
        log.error("unhandled bolt error: %s", type(error).__name__)
