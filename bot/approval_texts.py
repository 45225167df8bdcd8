"""What the person who clicked is told about an approval decision, in plain words."""

from __future__ import annotations

from bot.approval_outcome import Outcome
from bot.errors import BotError
from bot.models import Approval, ApprovalStatus, EffectsState


def safe_error(exc: BaseException) -> str:
    """An effect's failure in words fit for Slack and the audit log (no raw exception text)."""
    if isinstance(exc, BotError):
        return exc.user_message
    return f"an unexpected error ({type(exc).__name__}); see the bot's logs"


def decision_message(outcome: Outcome, approval: Approval | None) -> str:
    if outcome == Outcome.approved and approval is not None and approval.effects_state == EffectsState.failed:
        return (
            f"Approved, but starting the sync failed: {approval.effects_error} "
            "Fix the cause, then press Retry."
        )
    if outcome == Outcome.recorded and approval is not None:
        missing = approval.required - len(approval.approvers)
        return f"Your approval is recorded ({len(approval.approvers)} of {approval.required}); {missing} more needed."
    if outcome == Outcome.duplicate_vote and approval is not None:
        missing = approval.required - len(approval.approvers)
        return f"You have already approved this request; it needs {missing} more approval(s) from other team leads."
    if outcome == Outcome.already_decided and approval is not None:
        if approval.status == ApprovalStatus.approved and approval.effects_state == EffectsState.done:
            return "This request has already been approved and the sync has been started."
        return f"This request has already been {approval.status.value}."
    return {
        Outcome.pending: "This request is still waiting for a decision.",
        Outcome.approved: "Approved. The Marketo fields are being created and the sync is starting.",
        Outcome.rejected: "Rejected. The requester has been told why.",
        Outcome.cancelled: "The approval request was withdrawn; the connection can be edited again.",
        Outcome.already_decided: "This request has already been decided.",
        Outcome.expired: "This request expired before it was approved. The requester can send it again from Step 3.",
        Outcome.not_found: "This request no longer exists (the button may be from an old message). "
        "Run /connect-dynamics status to see where things stand.",
        Outcome.self_approval: "You can't approve your own request; another team lead has to. "
        "To withdraw it, use /connect-dynamics cancel.",
        Outcome.not_lead: "Only team leads can approve or reject a sync request.",
        Outcome.duplicate_vote: "You have already approved this request.",
    }[outcome]


def withdrawn_message(approval: Approval, lock_released: bool) -> str:
    """What the person who withdrew an approved request whose sync never started is told."""
    if lock_released:
        lock = "No Marketo field was created, so this Marketo instance is no longer locked to the Dynamics org."
    elif approval.may_have_created_fields:
        lock = (f"{len(approval.fields_created) or 'Some'} Marketo field(s) were already created and cannot be "
                "deleted, so this Marketo instance stays locked to the Dynamics org.")
    else:
        lock = "The Dynamics org lock of this Marketo instance stays as it was."
    return f"The approved request was withdrawn before its sync started; the connection can be edited again. {lock}"
