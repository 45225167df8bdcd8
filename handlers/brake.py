"""The mass-change brake's Approve / Discard buttons (team leads)."""

from __future__ import annotations

from bot.roles import DECIDE
from bot.slack_payloads import ActionPayload
from bot.steps import brake
from bot.views import ids
from handlers.context import Ctx, Route


def _decide(ctx: Ctx[ActionPayload], approve: bool) -> None:
    ctx.ack()
    container = ctx.container
    ctx.tell_later(brake.decide_hold, container.store, container.audit, ctx.client, ctx.team_id, ctx.user_id,
                   ctx.payload.action.value or "", approve)


def on_approve(ctx: Ctx[ActionPayload]) -> None:
    _decide(ctx, approve=True)


def on_discard(ctx: Ctx[ActionPayload]) -> None:
    _decide(ctx, approve=False)


ACTIONS = {ids.BRAKE_APPROVE_ACTION: Route(on_approve, DECIDE), ids.BRAKE_DISCARD_ACTION: Route(on_discard, DECIDE)}
