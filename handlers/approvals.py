"""Step 3 (enable sync → ask for approval) and the Approve / Reject buttons."""

from __future__ import annotations

import logging

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot import flow
from bot.approvals import Outcome
from bot.dynamics.duplicates import find_duplicate_emails
from bot.errors import FlowError
from bot.models import Approval, ApprovalStatus, Connection, Entity
from bot.runtime import Runtime
from bot.views import ids
from bot.views.approval import approval_request_message, reject_reason_modal
from bot.views.common import info_modal
from bot.views.kit import ViewMetadata
from bot.views.step3 import DuplicateSummary, enable_sync_modal
from handlers.context import Ctx

log = logging.getLogger(__name__)


def open_step3(ctx: Ctx, connection_id: str | None) -> None:
    connection = ctx.runtime.store.get_connection(ctx.team_id, connection_id) if connection_id else None
    if connection is None:
        raise FlowError("This connection no longer exists. Run /connect-dynamics again.")
    summary = DuplicateSummary.from_connection(connection)
    ctx.ack(response_action="update", view=enable_sync_modal(connection.id, summary, connection.notify_email))
    if summary is None:
        ctx.later(compute_duplicates, ctx.runtime, ctx.client, ctx.team_id, connection.id, ctx.submission.view.id)


def compute_duplicates(runtime: Runtime, client: WebClient, team_id: str, connection_id: str, view_id: str) -> None:
    """After the ack: scan Dataverse for shared emails, save the report, refresh the open modal."""
    connection = runtime.store.get_connection(team_id, connection_id)
    people = {p.entity: p.filter_attribute for p in connection.plan.entities if p.entity in (Entity.lead, Entity.contact)}
    with runtime.services.dataverse(team_id, connection_id) as dataverse:
        report = find_duplicate_emails(dataverse, entities=tuple(people), filter_attributes=people)

    def save(current: Connection) -> Connection:
        current.duplicate_count = report.total_duplicate_emails
        current.duplicate_examples = list(report.examples)
        return current

    connection = runtime.store.update_connection(team_id, connection_id, save)
    try:
        client.views_update(view_id=view_id, view=enable_sync_modal(
            connection_id, DuplicateSummary.from_connection(connection), connection.notify_email))
    except SlackApiError:
        log.info("step 3 modal closed before the duplicate report was ready")


def on_begin_sync(ctx: Ctx) -> None:
    """Begin sync asks for approval; it starts nothing."""
    runtime = ctx.runtime
    connection_id = ViewMetadata.parse(ctx.submission.view.private_metadata).connection_id
    email = ctx.submission.view.value(ids.NOTIFY_EMAIL_BLOCK, ids.NOTIFY_EMAIL_ACTION) or ""
    try:
        flow.set_notify_email(runtime.store, ctx.team_id, connection_id, ctx.user_id, email)
    except FlowError as exc:
        ctx.ack(response_action="errors", errors={ids.NOTIFY_EMAIL_BLOCK: exc.user_message})
        return
    approval = runtime.approvals.request(ctx.team_id, connection_id, ctx.user_id)
    where = f"<#{runtime.settings.APPROVAL_CHANNEL}>" if runtime.settings.APPROVAL_CHANNEL else "the team leads' DMs"
    ctx.ack(response_action="update", view=info_modal(
        "Sent for approval",
        f":outbox_tray: Your request is in {where}. Nothing changes in Marketo until a team lead approves "
        f"({approval.required} approval{'s' if approval.required > 1 else ''} needed). You'll get a DM "
        "when it's decided."))
    ctx.later(post_request, runtime, approval)


def post_request(runtime: Runtime, approval: Approval) -> None:
    """Post the request to the approvals channel, or DM it to every lead who may decide."""
    connection = runtime.store.get_connection(approval.team_id, approval.connection_id)
    message = approval_request_message(approval, connection, connection.plan).to_dict()
    slack = runtime.services.slack
    if runtime.settings.APPROVAL_CHANNEL:
        targets = [runtime.settings.APPROVAL_CHANNEL]
    else:
        leads = sorted(lead for lead in runtime.roles.leads if lead != approval.requester)
        targets = [slack.conversations_open(users=lead)["channel"]["id"] for lead in leads]
    for channel in targets:
        posted = slack.chat_postMessage(channel=channel, **message)
        stored = runtime.approvals.add_message(approval.team_id, approval.id, posted["channel"], posted["ts"])
        if stored is not None and stored.status != ApprovalStatus.pending:
            runtime.approvals.effects.update_messages(stored)  # decided (or expired) while we posted


def on_approve(ctx: Ctx) -> None:
    approval_id = ctx.action.action.value or ""
    ctx.ack()
    ctx.later(decide_approve, ctx, approval_id)


def decide_approve(ctx: Ctx, approval_id: str) -> None:
    runtime = ctx.runtime
    decision = runtime.approvals.approve(ctx.team_id, approval_id, ctx.user_id)
    if decision.outcome == Outcome.recorded:
        runtime.approvals.effects.update_messages(decision.approval)
    if decision.outcome != Outcome.approved or decision.effects_failed:
        ctx.tell(decision.message)


def on_reject(ctx: Ctx) -> None:
    """Leads only, and not their own request: ask for a reason in a modal."""
    runtime = ctx.runtime
    approval = runtime.approvals.get(ctx.team_id, ctx.action.action.value or "")
    runtime.roles.require_lead(ctx.user_id)
    ctx.ack()
    if approval is None:
        ctx.tell_after_ack("That approval request no longer exists.")
        return
    if approval.requester == ctx.user_id:
        ctx.tell_after_ack("You can't decide on your own request. To withdraw it, run /connect-dynamics cancel.")
        return
    ctx.later(ctx.client.views_open, trigger_id=ctx.action.trigger_id, view=reject_reason_modal(approval.id))


def on_reject_reason(ctx: Ctx) -> None:
    reason = (ctx.submission.view.value(ids.REJECT_REASON_BLOCK, ids.REJECT_REASON_ACTION) or "").strip()
    if not reason:
        ctx.ack(response_action="errors", errors={ids.REJECT_REASON_BLOCK: "Say why, so the requester can fix it."})
        return
    approval_id = ViewMetadata.parse(ctx.submission.view.private_metadata).approval_id or ""
    ctx.ack()
    ctx.later(decide_reject, ctx, approval_id, reason)


def decide_reject(ctx: Ctx, approval_id: str, reason: str) -> None:
    decision = ctx.runtime.approvals.reject(ctx.team_id, approval_id, ctx.user_id, reason)
    ctx.tell(decision.message)


ACTIONS = {ids.APPROVE_ACTION: on_approve, ids.REJECT_ACTION: on_reject}
VIEWS = {ids.ENABLE_SYNC_CALLBACK: on_begin_sync, ids.REJECT_REASON_CALLBACK: on_reject_reason}
