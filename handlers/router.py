"""One Bolt listener per kind of request, routing by id through plain dicts.

Bolt would run every registered listener's matcher on each request; a dict lookup is
cheaper and lets an unknown or stale id (a button from an old message, an older version
of the bot) be acknowledged with 200 and a "no longer valid" note instead of a 404.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable

from slack_bolt import Ack, App
from slack_sdk import WebClient

from bot.errors import BotError
from bot.runtime import Runtime
from bot.slack_payloads import ActionPayload, SlashCommand, SuggestionPayload, ViewPayload
from bot.views.kit import escape
from handlers import approvals, commands, credentials, fields, home, sync
from handlers.context import Ctx, user_message

log = logging.getLogger(__name__)

Handler = Callable[[Ctx], None]

STALE_BUTTON = "This button is no longer valid (it belongs to an older message or flow). Run /connect-dynamics status to see where things stand."

ACTIONS: dict[str, Handler] = {
    **credentials.ACTIONS, **fields.ACTIONS, **approvals.ACTIONS, **sync.ACTIONS, **home.ACTIONS,
}
VIEWS: dict[str, Handler] = {**credentials.VIEWS, **fields.VIEWS, **approvals.VIEWS}
OPTIONS: dict[str, Handler] = {**fields.OPTIONS}


def _run(handler: Handler, ctx: Ctx) -> None:
    """Run a handler; a BotError before the ack becomes a plain message, anything else is logged."""
    try:
        handler(ctx)
    except BotError as exc:
        _answer_error(ctx, exc)
    except Exception as exc:  # noqa: BLE001 - the user gets a plain message, never a trace
        log.exception("handler %s failed", getattr(handler, "__name__", handler))
        _answer_error(ctx, exc)


def _answer_error(ctx: Ctx, exc: BaseException) -> None:
    text = user_message(exc)
    if ctx.ack.response is not None:  # already acked: say it where the user is
        ctx.tell_after_ack(text)
        return
    if isinstance(ctx.payload, SlashCommand):
        ctx.ack(text=escape(text))
    elif isinstance(ctx.payload, ViewPayload) and ctx.payload.type == "view_submission":
        from bot.views.common import error_modal

        ctx.ack(response_action="update", view=error_modal(text))
    elif isinstance(ctx.payload, SuggestionPayload):
        ctx.ack(options=[])
    else:
        ctx.ack()
        ctx.tell_after_ack(text)


def register(app: App, runtime: Runtime) -> None:
    def ctx_for(model: type, body: dict, ack: Ack, client: WebClient) -> Ctx:
        return Ctx(runtime=runtime, ack=ack, client=client, payload=model.model_validate(body))

    @app.command(re.compile(r"^/"))
    def on_command(ack: Ack, body: dict, client: WebClient) -> None:
        _run(commands.on_command, ctx_for(SlashCommand, body, ack, client))

    @app.action(re.compile(r".*"))
    def on_action(ack: Ack, body: dict, client: WebClient) -> None:
        ctx = ctx_for(ActionPayload, body, ack, client)
        handler = ACTIONS.get(ctx.action.action.action_id)
        if handler is None:
            ack()
            if not ctx.action.action.action_id.startswith("noop"):
                ctx.tell_after_ack(STALE_BUTTON)
            return
        _run(handler, ctx)

    @app.view(re.compile(r".*"))
    def on_view(ack: Ack, body: dict, client: WebClient) -> None:
        ctx = ctx_for(ViewPayload, body, ack, client)
        handler = VIEWS.get(ctx.submission.view.callback_id)
        if handler is None:
            from bot.views.common import info_modal

            ack(response_action="update", view=info_modal("No longer valid", STALE_BUTTON))
            return
        _run(handler, ctx)

    @app.view_closed(re.compile(r".*"))
    def on_view_closed(ack: Ack) -> None:
        ack()

    @app.options(re.compile(r".*"))
    def on_options(ack: Ack, body: dict, client: WebClient) -> None:
        ctx = ctx_for(SuggestionPayload, body, ack, client)
        handler = OPTIONS.get(ctx.suggestion.action_id)
        if handler is None:
            ack(options=[])
            return
        _run(handler, ctx)

    @app.event("app_home_opened")
    def on_home(body: dict, client: WebClient) -> None:
        home.publish(runtime, client, body)

    @app.error
    def on_error(error: Exception) -> None:
        log.error("unhandled bolt error: %s", type(error).__name__)
