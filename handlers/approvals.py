"""Step 3 (enable sync → ask for approval) and the Approve / Reject buttons."""

from __future__ import annotations

from bot.roles import CONNECT, DECIDE, RETRY
from bot.slack_payloads import ActionPayload, ViewPayload
from bot.steps import confirm, decide
from bot.views import ids
from bot.views.kit import ViewMetadata
from handlers.context import Ctx, Route


def on_plan_submit(ctx: Ctx[ViewPayload]) -> None:
    """The plan is accepted: Step 3, its duplicate report computed after the ack when not saved yet."""
    container = ctx.container
    step3 = confirm.open_step3(container.store, ctx.team_id, ViewMetadata.parse(ctx.payload.view.private_metadata)
                               .connection_id, container.settings)
    ctx.ack(response_action="update", view=step3.view)
    if step3.report_pending:
        ctx.fill_modal(confirm.duplicate_report, container.store, container.dataverse, ctx.team_id,
                       step3.connection_id, container.settings)


def on_begin_sync(ctx: Ctx[ViewPayload]) -> None:
    """Begin sync asks for approval; it starts nothing."""
    container = ctx.container
    view = ctx.payload.view
    channel = container.workspaces.get(ctx.team_id).approval_channel
    requested = confirm.begin_sync(container.store, container.approvals, channel, ctx.team_id, ctx.user_id,
                                   ViewMetadata.parse(view.private_metadata).connection_id,
                                   view.value(ids.NOTIFY_EMAIL_BLOCK, ids.NOTIFY_EMAIL_ACTION) or "")
    if requested.approval is None:
        ctx.ack(response_action="errors", errors=requested.errors)
        return
    ctx.ack(response_action="update", view=requested.view)
    ctx.later(confirm.post_request, container.store, container.approvals, container.approvals.effects, ctx.client, channel,
              container.roles.for_team(ctx.team_id).leads, requested.approval)


def on_approve(ctx: Ctx[ActionPayload]) -> None:
    ctx.ack()
    container = ctx.container
    ctx.tell_later(decide.approve, container.approvals, container.approvals.effects, ctx.team_id, ctx.user_id,
                   ctx.payload.action.value or "")


def on_retry(ctx: Ctx[ActionPayload]) -> None:
    """Retry starting an approved sync whose effects failed: only what was not done yet runs."""
    ctx.ack()
    container = ctx.container
    ctx.tell_later(decide.retry, container.approvals, ctx.team_id, ctx.user_id, ctx.payload.action.value or "")


def on_reject(ctx: Ctx[ActionPayload]) -> None:
    """Ask for a reason in a modal (not for one's own request)."""
    ctx.ack()
    ctx.later(_ask_reason, ctx, ctx.payload.action.value or "")


def _ask_reason(ctx: Ctx[ActionPayload], approval_id: str) -> None:
    form = decide.reason_form(ctx.container.approvals, ctx.team_id, ctx.user_id, approval_id)
    if isinstance(form, str):
        ctx.tell(form)
    else:
        ctx.client.views_open(trigger_id=ctx.payload.trigger_id, view=form)


def on_reject_reason(ctx: Ctx[ViewPayload]) -> None:
    view = ctx.payload.view
    reason = view.value(ids.REJECT_REASON_BLOCK, ids.REJECT_REASON_ACTION) or ""
    errors = decide.reason_errors(reason)
    if errors:
        ctx.ack(response_action="errors", errors=errors)
        return
    ctx.ack()
    ctx.tell_later(decide.reject, ctx.container.approvals, ctx.team_id, ctx.user_id,
                   ViewMetadata.parse(view.private_metadata).approval_id or "", reason)


ACTIONS = {ids.APPROVE_ACTION: Route(on_approve, DECIDE), ids.REJECT_ACTION: Route(on_reject, DECIDE),
           ids.RETRY_APPROVAL_ACTION: Route(on_retry, RETRY)}
VIEWS = {ids.PLAN_CALLBACK: Route(on_plan_submit, CONNECT),
         ids.ENABLE_SYNC_CALLBACK: Route(on_begin_sync, CONNECT),
         ids.REJECT_REASON_CALLBACK: Route(on_reject_reason, DECIDE)}
