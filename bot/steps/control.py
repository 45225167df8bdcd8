"""Cancel and resume: what is in progress for a team (a sync, a pending approval, a draft)."""

from __future__ import annotations

from rq import Queue

from bot import audit, flow
from bot.approval_outcome import Outcome
from bot.approvals import ApprovalService
from bot.audit import AuditLog
from bot.models import EffectsState, FlowState, RunStatus
from bot.notify import Notifier
from bot.steps.ports import ApprovalMessages
from bot.store import Store
from bot.sync.runs import request_cancel, resume_run

CANCELLING = ("Cancelling: the sync stops at the next batch boundary. Everything written so far stays in "
              "Marketo; /connect-dynamics resume is not possible after a cancel.")
DRAFT_CANCELLED = "The draft connection was cancelled. Nothing was written to Marketo."
RESUMED = "Resumed: the sync continues from its last checkpoint."
STUCK_APPROVAL = ("Nothing to resume yet: the request was approved, but starting the sync failed (the approval "
                  "request says why). Fix the cause, then a team lead presses Retry on the approval request; "
                  "or withdraw it with /connect-dynamics cancel.")


def cancel_current(
    store: Store, approvals: ApprovalService, messages: ApprovalMessages, audit_log: AuditLog, notifier: Notifier,
    team_id: str, user: str, queue: Queue | None = None,
) -> str:
    """Stop what is in progress for this team and say what happened (with the queue, a cancelled sync's
    Dataverse webhook is removed)."""
    connection = store.active_connection(team_id)
    if connection is None:
        return "Nothing to cancel: no connection is in progress."
    if connection.state == FlowState.awaiting_approval or (
            connection.state == FlowState.approved and approvals.stuck_for(team_id, connection.id)):
        decision = approvals.cancel(team_id, connection.id, user)
        if decision.outcome == Outcome.cancelled and decision.approval is not None:
            messages.update_messages(decision.approval)
        return decision.message
    if connection.run_id and connection.state in (FlowState.syncing, FlowState.paused):
        run = request_cancel(store, team_id, connection.run_id, notifier, queue)
        audit_log.record(team_id, user, audit.SYNC_CANCELLED, connection.id, f"run {run.id}")
        return CANCELLING
    if flow.can_edit(connection):
        flow.cancel_connection(store, team_id, connection.id, user)
        return DRAFT_CANCELLED
    return f"Nothing to cancel: the connection is {connection.state.value}."


def resume_current(
    store: Store, queue: Queue, audit_log: AuditLog, team_id: str, user: str, run_id: str | None = None
) -> str:
    """Resume the given run (a button on it), else the active connection's last run."""
    connection = store.active_connection(team_id)
    run_id = run_id or (connection.run_id if connection else None)
    if not run_id and connection is not None and connection.approval_id and connection.state == FlowState.approved:
        approval = store.get_approval(team_id, connection.approval_id)
        if approval is not None and approval.effects_state == EffectsState.failed:
            return STUCK_APPROVAL
    if not run_id:
        return "Nothing to resume: no sync has run yet."
    run = resume_run(store, queue, team_id, run_id)
    audit_log.record(team_id, user, audit.SYNC_RESUMED, run.connection_id, f"run {run.id}")
    return RESUMED if run.status != RunStatus.paused else run.message or f"The sync is still {run.status.value}."
