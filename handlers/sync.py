"""The Cancel and Resume buttons on the progress / paused messages."""

from __future__ import annotations

from bot.roles import CONTROL
from bot.slack_payloads import ActionPayload
from bot.steps import control
from bot.views import ids
from handlers.context import Ctx, Route


def on_cancel_button(ctx: Ctx[ActionPayload]) -> None:
    ctx.ack()
    container = ctx.container
    ctx.tell_later(control.cancel_current, container.store, container.approvals, container.approvals.effects, container.audit,
                   container.notifier, ctx.team_id, ctx.user_id, container.queue)


def on_resume_button(ctx: Ctx[ActionPayload]) -> None:
    ctx.ack()
    container = ctx.container
    ctx.tell_later(control.resume_current, container.store, container.queue, container.audit, ctx.team_id,
                   ctx.user_id, ctx.payload.action.value)


ACTIONS = {ids.CANCEL_SYNC_ACTION: Route(on_cancel_button, CONTROL),
           ids.RESUME_SYNC_ACTION: Route(on_resume_button, CONTROL)}
