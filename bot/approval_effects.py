"""What an approval decision does outside the approval record (the ApprovalEffects protocol).

Approved (the last needed vote): lock the Dynamics org for this Marketo instance, create the
plan's Marketo fields (irreversible — the reason for the gate), enqueue the initial sync, and
update every copy of the request message in place; each step is recorded on the approval as it
is done (`EffectStep`). When one fails the messages show why, with a Retry button. Rejected /
expired: update the messages and tell the requester.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from rq import Queue
from slack_sdk.errors import SlackApiError

from bot import audit, flow
from bot.audit import AuditLog
from bot.custom_object_models import CustomObjectPlan
from bot.errors import BotError, FlowError
from bot.marketo.client import MarketoClient
from bot.marketo.errors import MarketoFatal
from bot.models import Approval, ApprovalKind, ApprovalStatus, EffectStep, MarketoField, new_id
from bot.notify import Notifier
from bot.slack_clients import SlackClients
from bot.store import Resolution, Store
from bot.sync.backfill import start_backfill
from bot.sync.custom_sync import enqueue_custom_objects
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
    def __init__(self, *, store: Store, clients: SlackClients, notifier: Notifier,
                 marketo: Callable[[], MarketoClient], queue: Queue, audit: AuditLog) -> None:
        self.store = store
        self.clients = clients
        self.notifier = notifier
        self.marketo = marketo
        self.queue = queue
        self.audit = audit

    def on_approved(self, approval: Approval) -> None:
        if approval.kind == ApprovalKind.fields_change:
            self.on_fields_change_approved(approval)
            return
        """Each step runs only when the approval does not record it as done (a Retry after a failure
        resumes where the last attempt stopped); each is recorded as soon as it is done."""
        connection = self.store.get_connection(approval.team_id, approval.connection_id)
        if connection is None or connection.plan is None or connection.dynamics_url is None:
            raise FlowError("The connection or its plan is gone; nothing was changed.")
        actor = approval.decided_by or audit.SYSTEM
        if not approval.done(EffectStep.org_locked):
            flow.lock_dynamics_org(self.store, connection, connection.dynamics_url)
            approval = self._record(approval, lambda a: a.with_step(EffectStep.org_locked))
        if not approval.done(EffectStep.fields_created):
            approval = self._create_fields(approval, connection.plan.fields_to_create, actor,
                                           connection.plan.custom_objects)
        if not approval.done(EffectStep.sync_started):
            if connection.run_id is None:  # a run started by an attempt that could not record it is kept
                run = start_initial_sync(self.store, self.queue, connection, self.notifier)
                self.audit.record(approval.team_id, actor, audit.SYNC_STARTED, connection.id, f"run {run.id}")
            approval = self._record(approval, lambda a: a.with_step(EffectStep.sync_started))
        if not approval.done(EffectStep.messages_updated):
            self.update_messages(approval)
            approval = self._record(approval, lambda a: a.with_step(EffectStep.messages_updated))
        if not approval.done(EffectStep.requester_told):
            self._tell(approval.team_id, approval.requester, approved_notice(approval))
            self._record(approval, lambda a: a.with_step(EffectStep.requester_told))

    def on_effects_failed(self, approval: Approval) -> None:
        """Every copy of the request shows why starting the sync failed, with a Retry button."""
        self.update_messages(approval)

    def _create_fields(self, approval: Approval, planned: list[MarketoField], actor: str,
                       custom_objects: list[CustomObjectPlan] | None = None) -> Approval:
        """The plan's Marketo fields not created yet; what Marketo created is recorded even when it
        refused some, so a retry asks only for the rest. Then the custom object types, after the lead
        fields their link fields point to (`ensure_custom_object` is safe to repeat on a retry)."""
        wanted = [f for f in planned if f.name not in approval.fields_created]
        approval = self._record(approval, lambda a: a.sending_fields([f.name for f in wanted]))
        result = self.marketo().create_lead_fields(wanted)
        approval = self._record(approval, lambda a: a.fields_answered(result.created))
        if result.skipped:
            names = ", ".join(f"{name} ({reason})" for name, reason in result.skipped[:5])
            raise SchemaNotApplied(f"Marketo refused to create some fields: {names}. Nothing was synced; "
                                   "fix the cause, then a team lead presses Retry on the approval request.")
        for plan in custom_objects or []:
            try:
                self.marketo().ensure_custom_object(plan)
            except MarketoFatal as exc:
                raise SchemaNotApplied(f"Marketo refused the custom object {plan.api_name}: {exc.marketo_message}. "
                                       "Nothing was synced; fix the cause, then a team lead presses Retry on the "
                                       "approval request.") from exc
        objects = f", {len(custom_objects)} custom object types made" if custom_objects else ""
        self.audit.record(approval.team_id, actor, audit.SCHEMA_APPLIED, approval.connection_id,
                          f"{len(result.created)} fields created, {len(result.existing)} already existed{objects}")
        return self._record(approval, lambda a: a.with_step(EffectStep.fields_created))

    def _record(self, approval: Approval, change: Callable[[Approval], Approval]) -> Approval:
        """One piece of bookkeeping on the approval record, in the store's transaction."""
        return self.store.update_approval(approval.team_id, approval.id, change) or change(approval)

    def on_fields_change_approved(self, approval: Approval) -> None:
        """A change of fields: create the new Marketo fields and custom objects, switch the connection to the
        new plan, take the removed custom tables' records off the error list (never retried again), backfill
        the added columns into existing records and read the added custom tables in full (the incremental
        cycles go on meanwhile)."""
        connection = self.store.get_connection(approval.team_id, approval.connection_id)
        if connection is None or connection.plan is None or connection.pending_plan is None:
            raise FlowError("The connection or its proposed change of fields is gone; nothing was changed.")
        change = plan_change(connection.plan, connection.pending_plan)
        objects = change.objects_to_make()
        self._create_fields(approval, connection.pending_plan.fields_to_create, approval.decided_by or audit.SYSTEM,
                            objects)
        fields = change.backfill_fields()
        run_id = new_id() if fields else None
        switched = flow.apply_fields_change(self.store, approval.team_id, connection.id, approval.id, run_id)
        if switched is None:
            raise FlowError("The connection is no longer synced; the change of fields was not applied.")
        self.update_messages(approval)
        for removed in change.objects_removed:
            self.store.sync_errors.resolve_all(approval.team_id, connection.id, removed.table,
                                               Resolution.table_removed)
        if objects:
            self._read_in_full(approval, objects)
        if run_id is not None:
            run = start_backfill(self.store, self.queue, switched, fields, approval.requester, run_id, self.notifier)
            self.audit.record(approval.team_id, approval.decided_by or audit.SYSTEM, audit.BACKFILL_STARTED,
                              connection.id, f"run {run.id}: " + ", ".join(
                                  f"{entity} +{len(names)}" for entity, names in fields.items()))
        self._tell(approval.team_id, approval.requester, fields_change_approved_notice(approval))

    def _read_in_full(self, approval: Approval, objects: list[CustomObjectPlan]) -> None:
        """The custom tables added (or given new columns) are read in full by the custom-tables job: their
        delta links (or watermarks) are forgotten once the new plan is in force (a cycle of the old plan could
        make one)."""
        for plan in objects:
            self.store.delta_links.forget(approval.team_id, approval.connection_id, plan.table)
            self.store.watermarks.forget(approval.team_id, approval.connection_id, plan.table)
        enqueue_custom_objects(self.queue, approval.team_id, approval.connection_id)
        self.audit.record(approval.team_id, approval.decided_by or audit.SYSTEM, audit.BACKFILL_STARTED,
                          approval.connection_id, "custom tables read in full: " + ", ".join(p.table for p in objects))

    def on_rejected(self, approval: Approval) -> None:
        self.update_messages(approval)
        self._tell(approval.team_id, approval.requester, rejected_notice(approval))

    def on_expired(self, approval: Approval) -> None:
        self.update_messages(approval)
        self._tell(approval.team_id, approval.requester, expired_notice(approval))

    def update_messages(self, approval: Approval) -> None:
        """Every copy of the request, in place: buttons while pending, the decision after."""
        connection = self.store.get_connection(approval.team_id, approval.connection_id)
        if connection is None:
            return
        build = approval_request_message if approval.status == ApprovalStatus.pending else approval_decided_message
        message = build(approval, connection, connection.plan)
        slack = self.clients.for_team(approval.team_id)
        for channel, ts in approval.messages:
            try:
                slack.chat_update(channel=channel, ts=ts, **message.to_dict())
            except SlackApiError as exc:
                log.warning("could not update approval message in %s: %s", channel, exc.response.get("error"))

    def _tell(self, team_id: str, user: str, message: Message) -> None:
        try:
            self.notifier.direct_message(team_id, user, message)
        except SlackApiError as exc:
            log.warning("could not DM %s: %s", user, exc.response.get("error"))
