"""What an approval decision does outside the approval record (the ApprovalEffects protocol).

Approved (the last needed vote): create the plan's Marketo fields (irreversible — the reason
for the gate), lock the Dynamics URL for this Marketo instance, enqueue the initial sync, and
update every copy of the request message in place. Rejected / expired: update the messages
and tell the requester.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from rq import Queue
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot import audit, flow
from bot.audit import AuditLog
from bot.errors import BotError, FlowError
from bot.marketo.client import MarketoClient
from bot.models import Approval, ApprovalKind, ApprovalStatus, FieldPlan, new_id
from bot.notify import Notifier
from bot.store import Store
from bot.sync.backfill import start_backfill
from bot.sync.fields_change import plan_change
from bot.sync.runs import start_initial_sync
from bot.views.approval import (
    approval_decided_message,
    approval_request_message,
    approved_notice,
    expired_notice,
    fields_change_approved_notice,
    rejected_notice,
)
from bot.views.kit import Message

log = logging.getLogger(__name__)


class SchemaNotApplied(BotError):
    pass


class ApprovalEffects:
    def __init__(self, *, store: Store, slack: WebClient, notifier: Notifier, marketo: Callable[[], MarketoClient],
                 queue: Queue, audit: AuditLog) -> None:
        self.store = store
        self.slack = slack
        self.notifier = notifier
        self.marketo = marketo
        self.queue = queue
        self.audit = audit

    def on_approved(self, approval: Approval) -> None:
        if approval.kind == ApprovalKind.fields_change:
            self.on_fields_change_approved(approval)
            return
        connection = self.store.get_connection(approval.team_id, approval.connection_id)
        if connection is None or connection.plan is None or connection.dynamics_url is None:
            raise FlowError("The connection or its plan is gone; nothing was changed.")
        flow.lock_dynamics_org(self.store, connection, connection.dynamics_url)
        self._create_fields(approval, connection.id, connection.plan)
        self.update_messages(approval)
        run = start_initial_sync(self.store, self.queue, connection, self.notifier)
        self.audit.record(approval.team_id, approval.decided_by or audit.SYSTEM, audit.SYNC_STARTED,
                          connection.id, f"run {run.id}")
        self._tell(approval.requester, approved_notice(approval))

    def on_fields_change_approved(self, approval: Approval) -> None:
        """A change of fields: create the new Marketo fields, switch the connection to the new plan, and
        backfill the added columns into existing records (the incremental cycles go on meanwhile)."""
        connection = self.store.get_connection(approval.team_id, approval.connection_id)
        if connection is None or connection.plan is None or connection.pending_plan is None:
            raise FlowError("The connection or its proposed change of fields is gone; nothing was changed.")
        change = plan_change(connection.plan, connection.pending_plan)
        self._create_fields(approval, connection.id, connection.pending_plan)
        fields = change.backfill_fields()
        run_id = new_id() if fields else None
        switched = flow.apply_fields_change(self.store, approval.team_id, connection.id, approval.id, run_id)
        if switched is None:
            raise FlowError("The connection is no longer synced; the change of fields was not applied.")
        self.update_messages(approval)
        if run_id is not None:
            run = start_backfill(self.store, self.queue, switched, fields, approval.requester, run_id, self.notifier)
            self.audit.record(approval.team_id, approval.decided_by or audit.SYSTEM, audit.BACKFILL_STARTED,
                              connection.id, f"run {run.id}: " + ", ".join(
                                  f"{entity} +{len(names)}" for entity, names in fields.items()))
        self._tell(approval.requester, fields_change_approved_notice(approval))

    def _create_fields(self, approval: Approval, connection_id: str, plan: FieldPlan) -> None:
        result = self.marketo().create_lead_fields(plan.fields_to_create)
        if result.skipped:
            names = ", ".join(f"{name} ({reason})" for name, reason in result.skipped[:5])
            raise SchemaNotApplied(f"Marketo refused to create some fields: {names}. Nothing was synced; "
                                   "fix the plan or ask Marketo support, then retry the approval.")
        self.audit.record(approval.team_id, approval.decided_by or audit.SYSTEM, audit.SCHEMA_APPLIED,
                          connection_id, f"{len(result.created)} fields created, "
                          f"{len(result.existing)} already existed")

    def on_rejected(self, approval: Approval) -> None:
        self.update_messages(approval)
        self._tell(approval.requester, rejected_notice(approval))

    def on_expired(self, approval: Approval) -> None:
        self.update_messages(approval)
        self._tell(approval.requester, expired_notice(approval))

    def update_messages(self, approval: Approval) -> None:
        """Every copy of the request, in place: buttons while pending, the decision after."""
        connection = self.store.get_connection(approval.team_id, approval.connection_id)
        if connection is None:
            return
        build = approval_request_message if approval.status == ApprovalStatus.pending else approval_decided_message
        message = build(approval, connection, connection.plan)
        for channel, ts in approval.messages:
            try:
                self.slack.chat_update(channel=channel, ts=ts, **message.to_dict())
            except SlackApiError as exc:
                log.warning("could not update approval message in %s: %s", channel, exc.response.get("error"))

    def _tell(self, user: str, message: Message) -> None:
        try:
            self.notifier.direct_message(user, message)
        except SlackApiError as exc:
            log.warning("could not DM %s: %s", user, exc.response.get("error"))
