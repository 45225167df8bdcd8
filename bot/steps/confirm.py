"""Step 3: the duplicate report, and Begin sync (which asks the team leads; it starts nothing)."""

from __future__ import annotations

from dataclasses import dataclass, field

from slack_sdk import WebClient
from slack_sdk.models.views import View

from bot import flow
from bot.approvals import ApprovalService
from bot.config import Settings
from bot.dynamics.duplicates import find_duplicate_emails
from bot.errors import FlowError
from bot.models import Approval, ApprovalStatus, Connection, Entity
from bot.steps.ports import ApprovalMessages, DataverseFactory
from bot.store import Store
from bot.sync.live import webhooks_line
from bot.views import ids
from bot.views.approval import approval_request_message
from bot.views.common import info_modal
from bot.views.step3 import DuplicateSummary, enable_sync_modal

GONE = "This connection no longer exists. Run /connect-dynamics again."


@dataclass(frozen=True)
class Step3:
    """The Step 3 modal; `report_pending` when the duplicate report is still to be computed."""

    connection_id: str
    view: View
    report_pending: bool


@dataclass(frozen=True)
class SyncRequested:
    """Begin sync's answer: inline errors, or the approval asked for and the modal that says so."""

    errors: dict[str, str] = field(default_factory=dict)
    approval: Approval | None = None
    view: View | None = None


def _webhooks(settings: Settings | None, connection: Connection) -> str | None:
    """The Dataverse webhooks going live will register, when the settings say it will."""
    if settings is None or connection.plan is None:
        return None
    return webhooks_line(settings, [plan.entity.value for plan in connection.plan.entities])


def open_step3(store: Store, team_id: str, connection_id: str | None, settings: Settings | None = None) -> Step3:
    connection = store.get_connection(team_id, connection_id) if connection_id else None
    if connection is None:
        raise FlowError(GONE)
    summary = DuplicateSummary.from_connection(connection)
    view = enable_sync_modal(connection.id, summary, connection.notify_email, _webhooks(settings, connection))
    return Step3(connection.id, view, report_pending=summary is None)


def duplicate_report(store: Store, dataverse: DataverseFactory, team_id: str, connection_id: str,
                     settings: Settings | None = None) -> View:
    """Scan Dataverse for shared emails, save the report; returns Step 3 with it."""
    connection = store.get_connection(team_id, connection_id)
    if connection is None or connection.plan is None:
        raise FlowError(GONE)
    people: dict[Entity, str | None] = {p.entity: p.filter_attribute for p in connection.plan.entities if p.entity in (Entity.lead, Entity.contact)}
    with dataverse(team_id, connection_id) as client:
        report = find_duplicate_emails(client, entities=tuple(people), filter_attributes=people)

    def save(current: Connection) -> Connection:
        current.duplicate_count = report.total_duplicate_emails
        current.duplicate_records = report.records_involved
        current.duplicate_examples = list(report.examples)
        return current

    saved = store.update_connection(team_id, connection_id, save)
    if saved is None:
        raise FlowError(GONE)
    return enable_sync_modal(connection_id, DuplicateSummary.from_connection(saved), saved.notify_email,
                             _webhooks(settings, saved))


def begin_sync(store: Store, approvals: ApprovalService, approval_channel: str | None, team_id: str, user: str,
               connection_id: str | None, email: str) -> SyncRequested:
    """Save the notice address and ask for approval. Nothing changes in Marketo until a lead approves."""
    if not connection_id:
        raise FlowError(GONE)
    try:
        flow.set_notify_email(store, team_id, connection_id, user, email)
    except FlowError as exc:
        return SyncRequested(errors={ids.NOTIFY_EMAIL_BLOCK: exc.user_message})
    approval = approvals.request(team_id, connection_id, user)
    where = f"<#{approval_channel}>" if approval_channel else "the team leads' DMs"
    view = info_modal(
        "Sent for approval",
        f":outbox_tray: Your request is in {where}. Nothing changes in Marketo until a team lead approves "
        f"({approval.required} approval{'s' if approval.required > 1 else ''} needed). You'll get a DM "
        "when it's decided.")
    return SyncRequested(approval=approval, view=view)


def post_request(store: Store, approvals: ApprovalService, messages: ApprovalMessages, slack: WebClient,
                 approval_channel: str | None, leads: frozenset[str], approval: Approval) -> None:
    """Post the request to the approvals channel, or DM it to every lead who may decide."""
    connection = store.get_connection(approval.team_id, approval.connection_id)
    if connection is None:
        raise FlowError(GONE)
    message = approval_request_message(approval, connection, connection.plan).to_dict()
    if approval_channel:
        targets = [approval_channel]
    else:
        deciders = sorted(lead for lead in leads if lead != approval.requester)
        targets = [slack.conversations_open(users=lead)["channel"]["id"] for lead in deciders]
    for channel in targets:
        posted = slack.chat_postMessage(channel=channel, **message)
        stored = approvals.add_message(approval.team_id, approval.id, posted["channel"], posted["ts"])
        if stored is not None and stored.status != ApprovalStatus.pending:
            messages.update_messages(stored)  # decided (or expired) while we posted
