"""Team-lead approval of a sync request: N-of-M, expiry, reject with reason, exactly-once effects.

Every status change is one WATCH/MULTI transaction on the approval record
(`store.update_approval`). Only the call whose transaction moved the status runs what
follows it (connection state, audit entry, `effects`), so a double click or twenty leads
clicking at once produce one decision and one `effects.on_approved` call.

The connection moves only through `bot.flow`; what the clicker is told is in `approval_texts`.
Approve/reject answer with a `Decision` (an outcome and a plain message) rather than
raising, because a stale or refused click is normal in Slack; `request` and `cancel`
raise `PermissionDenied` / `FlowError` like the rest of the flow.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from bot import audit, flow
from bot.approval_outcome import Decision, Outcome
from bot.approval_texts import decision_message, safe_error, withdrawn_message
from bot.errors import FlowError, PermissionDenied
from bot.models import Approval, ApprovalKind, ApprovalStatus, EffectsState, FieldsChange, FlowState
from bot.roles import RoleBook
from bot.store import Store

log = logging.getLogger(__name__)

EFFECTS_STALE_SECONDS = 15 * 60


class ApprovalEffects(Protocol):
    """What happens outside the approval record; implemented by the integrator."""

    def on_approved(self, approval: Approval) -> None: ...

    def on_rejected(self, approval: Approval) -> None: ...

    def on_expired(self, approval: Approval) -> None: ...

    def on_effects_failed(self, approval: Approval) -> None: ...

    def update_messages(self, approval: Approval) -> None: ...


Rule = Callable[[Approval, float], tuple[Outcome, Approval | None]]


@dataclass
class _Step:
    outcome: Outcome = Outcome.not_found
    moved: bool = False  # this call's transaction changed the status


class ApprovalService:
    def __init__(
        self,
        store: Store,
        *,
        required: int = 1,
        ttl_hours: float = 24.0,
        roles: RoleBook,
        effects: ApprovalEffects,
        clock: Callable[[], float] = time.time,
        effects_stale_after: float = EFFECTS_STALE_SECONDS,
    ) -> None:
        if required < 1 or ttl_hours <= 0:
            raise ValueError("required must be >= 1 and ttl_hours > 0")
        self.store = store
        self.required = required
        self.ttl_hours = ttl_hours
        self.roles = roles
        self.effects = effects
        self.clock = clock
        self.effects_stale_after = effects_stale_after
        self.audit = audit.AuditLog(store, clock)

    # -- reading -----------------------------------------------------------------------------------
    def get(self, team_id: str, approval_id: str) -> Approval | None:
        return self.store.get_approval(team_id, approval_id)

    def pending_for(self, team_id: str, connection_id: str) -> Approval | None:
        """The pending request of a connection, if any."""
        connection = self.store.get_connection(team_id, connection_id)
        if connection is None or connection.approval_id is None:
            return None
        approval = self.get(team_id, connection.approval_id)
        return approval if approval is not None and approval.status == ApprovalStatus.pending else None

    # -- asking ------------------------------------------------------------------------------------
    def request(self, team_id: str, connection_id: str, requester: str) -> Approval:
        """Step 3's Begin sync: ask the leads. The connection must be in `confirm`; it moves to
        `awaiting_approval` (so there is at most one pending request per connection).

        Raises PermissionDenied (not an admin), FlowError (wrong state, or too few leads to ever approve).
        """
        self.roles.for_team(team_id).require_admin(requester)
        self._enough_leads(team_id, requester)
        created = self.clock()
        approval = Approval(
            team_id=team_id,
            connection_id=connection_id,
            requester=requester,
            required=self.required,
            created_at=created,
            expires_at=created + self.ttl_hours * 3600,
        )
        flow.request_approval(self.store, team_id, connection_id, approval.id)
        self.store.save_approval(approval)
        self.store.add_pending_approval(team_id, approval.id, approval.expires_at)
        detail = f"needs {self.required} team-lead approval(s); expires in {self.ttl_hours:g} h"
        self.audit.record(team_id, requester, audit.APPROVAL_REQUESTED, connection_id, detail)
        return approval

    def request_fields_change(self, team_id: str, connection_id: str, requester: str,
                              change: FieldsChange) -> Approval:
        """A change of fields after go-live goes to the leads (the same rules as a sync request); the
        connection keeps syncing and holds the change beside its plan until they decide."""
        self.roles.for_team(team_id).require_admin(requester)
        self._enough_leads(team_id, requester)
        created = self.clock()
        approval = Approval(team_id=team_id, connection_id=connection_id, requester=requester,
                            kind=ApprovalKind.fields_change, fields_change=change, required=self.required,
                            created_at=created, expires_at=created + self.ttl_hours * 3600)
        flow.request_fields_change(self.store, team_id, connection_id, approval.id)
        self.store.save_approval(approval)
        self.store.add_pending_approval(team_id, approval.id, approval.expires_at)
        detail = f"change of fields; needs {self.required} team-lead approval(s)"
        self.audit.record(team_id, requester, audit.FIELDS_CHANGE_REQUESTED, connection_id, detail)
        return approval

    def _enough_leads(self, team_id: str, requester: str) -> None:
        eligible = self.roles.for_team(team_id).leads - {requester}
        if len(eligible) < self.required:
            raise FlowError(
                f"This request needs {self.required} team-lead approval(s), but only {len(eligible)} team "
                "lead(s) other than you are configured. Ask whoever runs the bot to add leads to "
                "the App Home's workspace settings (or TEAM_LEAD_USER_IDS) or lower APPROVALS_REQUIRED."
            )

    def add_message(self, team_id: str, approval_id: str, channel: str, ts: str) -> Approval | None:
        """Remember where a copy of the approval message was posted, so every copy can be updated."""

        def change(current: Approval) -> Approval | None:
            if (channel, ts) in current.messages:
                return None
            return current.model_copy(update={"messages": [*current.messages, (channel, ts)]})

        return self.store.update_approval(team_id, approval_id, change)

    # -- deciding ----------------------------------------------------------------------------------
    def approve(self, team_id: str, approval_id: str, user: str) -> Decision:
        if not self.roles.for_team(team_id).is_lead(user):
            return Decision(Outcome.not_lead, self.get(team_id, approval_id), decision_message(Outcome.not_lead, None))

        def rule(current: Approval, at: float) -> tuple[Outcome, Approval | None]:
            if user == current.requester:
                return Outcome.self_approval, None
            if user in current.approvers:
                return Outcome.duplicate_vote, None
            approvers = [*current.approvers, user]
            if len(approvers) < current.required:
                return Outcome.recorded, current.model_copy(update={"approvers": approvers})
            return Outcome.approved, current.model_copy(
                update={
                    "approvers": approvers,
                    "status": ApprovalStatus.approved,
                    "decided_by": user,
                    "decided_at": at,
                    "effects_state": EffectsState.running,
                    "effects_started_at": at,
                }
            )

        return self._decide(team_id, approval_id, user, rule)

    def reject(self, team_id: str, approval_id: str, user: str, reason: str) -> Decision:
        """A lead turns the request down. Raises FlowError when `reason` is empty."""
        if not self.roles.for_team(team_id).is_lead(user):
            return Decision(Outcome.not_lead, self.get(team_id, approval_id), decision_message(Outcome.not_lead, None))
        existing = self.get(team_id, approval_id)
        if existing is None:
            return Decision(Outcome.not_found, None, decision_message(Outcome.not_found, None))
        if existing.requester == user:
            return Decision(
                Outcome.self_approval,
                existing,
                "You can't reject your own request. To withdraw it, use /connect-dynamics cancel.",
            )
        reason = reason.strip()
        if not reason:
            raise FlowError("Please give a reason for rejecting; the requester will see it.")

        def rule(current: Approval, at: float) -> tuple[Outcome, Approval | None]:
            return Outcome.rejected, current.model_copy(
                update={"status": ApprovalStatus.rejected, "decided_by": user, "decided_at": at, "reason": reason}
            )

        return self._decide(team_id, approval_id, user, rule)

    def cancel(self, team_id: str, connection_id: str, user: str) -> Decision:
        """Withdraw a connection's pending request (its requester, or any Marketo admin).

        Raises PermissionDenied for anyone else. A connection stuck in `awaiting_approval` whose
        approval record is gone is put back to `confirm` (outcome not_found).
        """
        connection = self.store.get_connection(team_id, connection_id)
        approval = (
            self.get(team_id, connection.approval_id) if connection is not None and connection.approval_id else None
        )
        if approval is None:
            if connection is not None and connection.state == FlowState.awaiting_approval:
                self.roles.for_team(team_id).require_admin(user)
                flow.release_to_confirm(self.store, team_id, connection_id, connection.approval_id)
            return Decision(Outcome.not_found, None, decision_message(Outcome.not_found, None))
        if user != approval.requester and not self.roles.for_team(team_id).is_admin(user):
            raise PermissionDenied("Only the person who asked for approval, or a Marketo admin, can withdraw it.")
        if approval.status == ApprovalStatus.approved:
            if connection is None or connection.state != FlowState.approved:
                return Decision(Outcome.already_decided, approval, decision_message(Outcome.already_decided, approval))
            return self._withdraw_stuck(approval, user)

        def rule(current: Approval, at: float) -> tuple[Outcome, Approval | None]:
            return Outcome.cancelled, current.model_copy(
                update={"status": ApprovalStatus.cancelled, "decided_by": user, "decided_at": at}
            )

        return self._decide(team_id, approval.id, user, rule)

    def expire_due(self, team_id: str) -> list[Approval]:
        """Expire every pending request of the team past its `expires_at`; returns those expired now."""
        expired: list[Approval] = []
        for approval_id in self.store.pending_approvals_due(team_id, self.clock()):
            step, approval = self._transact(team_id, approval_id, lambda current, at: (Outcome.pending, None))
            if step.outcome != Outcome.pending:
                self.store.remove_pending_approval(team_id, approval_id)
            if approval is not None and step.moved:
                expired.append(self._after(step, approval, audit.SYSTEM))
        return expired

    def retry_effects(self, team_id: str, approval_id: str, user: str) -> Decision:
        """Re-run `on_approved` after it failed (or after a run that never finished). Leads only.

        Effects that succeeded are never run again (outcome already_decided), and a retry skips the
        steps the approval records as done.
        """
        if not self.roles.for_team(team_id).is_lead(user):
            return Decision(Outcome.not_lead, self.get(team_id, approval_id), decision_message(Outcome.not_lead, None))
        claimed, approval = self._claim_stuck(team_id, approval_id, lambda: {
            "effects_state": EffectsState.running, "effects_started_at": self.clock()})
        if approval is None or approval.status == ApprovalStatus.pending:
            return Decision(Outcome.not_found, None, decision_message(Outcome.not_found, None))
        if not claimed:
            return Decision(Outcome.already_decided, approval, decision_message(Outcome.already_decided, approval))
        self.audit.record(team_id, user, audit.EFFECTS_RETRIED, approval.connection_id, f"approval {approval.id}")
        approval = self._run_effects(approval)
        return Decision(Outcome.approved, approval, decision_message(Outcome.approved, approval))

    def stuck_for(self, team_id: str, connection_id: str) -> Approval | None:
        """The connection's approved request whose effects failed (or died mid-way), if any."""
        connection = self.store.get_connection(team_id, connection_id)
        approval = self.get(team_id, connection.approval_id) if connection and connection.approval_id else None
        return approval if approval is not None and self.stuck(approval) else None

    def stuck(self, approval: Approval) -> bool:
        """Approved, but what follows failed (or its run died mid-way): Retry or cancel may take it."""
        stale = (approval.effects_state == EffectsState.running
                 and self.clock() - (approval.effects_started_at or 0) >= self.effects_stale_after)
        return approval.status == ApprovalStatus.approved and (approval.effects_state == EffectsState.failed or stale)

    def _withdraw_stuck(self, approval: Approval, user: str) -> Decision:
        """Withdraw an approved request whose effects failed before its sync started (the connection is
        still `approved`): the connection goes back to Step 3 (editable), and the Marketo instance is
        unlocked again when no Marketo field was created for it. Claimed in one transaction, so a
        concurrent Retry and cancel never both run."""
        withdrawn, stored = self._claim_stuck(approval.team_id, approval.id, lambda: {
            "status": ApprovalStatus.cancelled, "decided_by": user, "decided_at": self.clock()})
        if stored is None or not withdrawn:
            return Decision(Outcome.already_decided, stored, decision_message(Outcome.already_decided, stored))
        team_id, connection_id = stored.team_id, stored.connection_id
        flow.withdraw_approved(self.store, team_id, connection_id, stored.id)
        released = not stored.may_have_created_fields and self.store.release_dynamics_lock(team_id, connection_id)
        lock = ("the Dynamics org lock was released" if released else
                "the Dynamics org lock stays" + (" (Marketo fields were created for it)"
                                                 if stored.may_have_created_fields else ""))
        self.audit.record(team_id, user, audit.APPROVAL_CANCELLED, connection_id,
                          f"approval {stored.id} withdrawn after its effects failed; {lock}")
        return Decision(Outcome.cancelled, stored, withdrawn_message(stored, released))

    # -- internals ---------------------------------------------------------------------------------
    def _claim_stuck(self, team_id: str, approval_id: str,
                     update: Callable[[], dict[str, Any]]) -> tuple[bool, Approval | None]:
        """Apply `update` to a stuck approval in one transaction; whether this call claimed it, and the record."""
        claimed = False

        def change(current: Approval) -> Approval | None:
            nonlocal claimed
            claimed = self.stuck(current)
            return current.model_copy(update=update()) if claimed else None

        stored = self.store.update_approval(team_id, approval_id, change)
        return claimed, stored

    def _transact(self, team_id: str, approval_id: str, rule: Rule) -> tuple[_Step, Approval | None]:
        """One atomic decision on a pending approval; expiry wins over any rule once due."""
        step = _Step()

        def change(current: Approval) -> Approval | None:
            at = self.clock()
            if current.status != ApprovalStatus.pending:
                step.outcome = Outcome.expired if current.status == ApprovalStatus.expired else Outcome.already_decided
                step.moved = False
                return None
            if at >= current.expires_at:
                step.outcome, step.moved = Outcome.expired, True
                return current.model_copy(update={"status": ApprovalStatus.expired, "decided_at": at})
            step.outcome, updated = rule(current, at)
            step.moved = updated is not None and updated.status != ApprovalStatus.pending
            return updated

        approval = self.store.update_approval(team_id, approval_id, change)
        return (step if approval is not None else _Step()), approval

    def _decide(self, team_id: str, approval_id: str, user: str, rule: Rule) -> Decision:
        step, approval = self._transact(team_id, approval_id, rule)
        if approval is not None:
            if step.moved:
                approval = self._after(step, approval, user)
            elif step.outcome == Outcome.recorded:
                detail = f"{len(approval.approvers)} of {approval.required} approvals"
                self.audit.record(team_id, user, audit.APPROVAL_RECORDED, approval.connection_id, detail)
        return Decision(step.outcome, approval, decision_message(step.outcome, approval))

    def _after(self, step: _Step, approval: Approval, actor: str) -> Approval:
        """What follows a status change, run only by the call whose transaction made it."""
        team_id, connection_id = approval.team_id, approval.connection_id
        self.store.remove_pending_approval(team_id, approval.id)
        if approval.status == ApprovalStatus.approved:
            if approval.kind == ApprovalKind.sync:
                flow.approve(self.store, team_id, connection_id, approval.id)
            detail = f"{len(approval.approvers)} of {approval.required} approvals: {', '.join(approval.approvers)}"
            self.audit.record(team_id, actor, audit.APPROVED, connection_id, detail)
            return self._run_effects(approval)
        self._release(approval)
        if approval.status == ApprovalStatus.expired:
            self.audit.record(team_id, audit.SYSTEM, audit.EXPIRED, connection_id, f"approval {approval.id}")
            self._notify(self.effects.on_expired, approval)
        elif approval.status == ApprovalStatus.rejected:
            self.audit.record(team_id, actor, audit.REJECTED, connection_id, f"approval {approval.id}")
            self._notify(self.effects.on_rejected, approval)
        elif approval.status == ApprovalStatus.cancelled:
            self.audit.record(team_id, actor, audit.APPROVAL_CANCELLED, connection_id, f"approval {approval.id}")
        return approval

    def _release(self, approval: Approval) -> None:
        """Not approved: a sync request goes back to Step 3; a change of fields is dropped."""
        if approval.kind == ApprovalKind.fields_change:
            flow.drop_fields_change(self.store, approval.team_id, approval.connection_id, approval.id)
        else:
            flow.release_to_confirm(self.store, approval.team_id, approval.connection_id, approval.id)

    def _run_effects(self, approval: Approval) -> Approval:
        """Run `on_approved` for an approval this call has claimed (effects_state running)."""
        try:
            self.effects.on_approved(approval)
        except Exception as exc:  # any failure is recorded and retryable
            log.exception("on_approved failed for approval %s", approval.id)
            error = safe_error(exc)
            flow.note_approval_error(self.store, approval.team_id, approval.connection_id, approval.id, error)
            self.audit.record(
                approval.team_id, audit.SYSTEM, audit.EFFECTS_FAILED, approval.connection_id,
                f"starting the sync failed: {error}",
            )
            failed = self._set_effects(approval, EffectsState.failed, error)
            self._notify(self.effects.on_effects_failed, failed)
            return failed
        flow.note_approval_error(self.store, approval.team_id, approval.connection_id, approval.id, None)
        return self._set_effects(approval, EffectsState.done, None)

    def _notify(self, effect: Callable[[Approval], None], approval: Approval) -> None:
        """Notifications never undo a decision; a failure is logged and audited."""
        try:
            effect(approval)
        except Exception as exc:
            log.exception("approval notification failed for approval %s", approval.id)
            self.audit.record(
                approval.team_id, audit.SYSTEM, audit.EFFECTS_FAILED, approval.connection_id,
                f"notification failed: {safe_error(exc)}",
            )

    def _set_effects(self, approval: Approval, state: EffectsState, error: str | None) -> Approval:
        def change(current: Approval) -> Approval:
            return current.model_copy(update={"effects_state": state, "effects_error": error})

        return self.store.update_approval(approval.team_id, approval.id, change) or change(approval)
