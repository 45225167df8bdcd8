"""A team lead decides on a sync request: approve, or reject with a reason.

Who may decide is checked before these run (leads only); what is about the request itself
(the requester never decides on their own request, one decision only) is `ApprovalService`'s.
"""

from __future__ import annotations

from slack_sdk.models.views import View

from bot.approval_outcome import Outcome
from bot.approvals import ApprovalService
from bot.steps.ports import ApprovalMessages
from bot.views import ids
from bot.views.approval import reject_reason_modal

REQUEST_GONE = "That approval request no longer exists."
OWN_REQUEST = "You can't decide on your own request. To withdraw it, run /connect-dynamics cancel."
REASON_NEEDED = "Say why, so the requester can fix it."


def approve(approvals: ApprovalService, messages: ApprovalMessages, team_id: str, user: str,
            approval_id: str) -> str | None:
    """Vote to approve. Returns what to tell the lead, or None when the updated request says it all."""
    decision = approvals.approve(team_id, approval_id, user)
    if decision.outcome == Outcome.recorded and decision.approval is not None:
        messages.update_messages(decision.approval)
    if decision.outcome != Outcome.approved or decision.effects_failed:
        return decision.message
    return None


def reason_form(approvals: ApprovalService, team_id: str, user: str, approval_id: str) -> View | str:
    """The modal asking why, or the reason it cannot be asked (text to tell the lead)."""
    approval = approvals.get(team_id, approval_id)
    if approval is None:
        return REQUEST_GONE
    if approval.requester == user:
        return OWN_REQUEST
    return reject_reason_modal(approval.id)


def reason_errors(reason: str) -> dict[str, str]:
    """Inline errors of the reason modal: a rejection always says why."""
    return {} if reason.strip() else {ids.REJECT_REASON_BLOCK: REASON_NEEDED}


def reject(approvals: ApprovalService, team_id: str, user: str, approval_id: str, reason: str) -> str:
    return approvals.reject(team_id, approval_id, user, reason.strip()).message


def retry(approvals: ApprovalService, team_id: str, user: str, approval_id: str) -> str | None:
    """Re-run what an approval's failed effects left undone. Returns what to tell the lead, or None when
    the updated request says it all (the sync started)."""
    decision = approvals.retry_effects(team_id, approval_id, user)
    if decision.outcome == Outcome.approved and not decision.effects_failed:
        return None
    return decision.message
