"""Approvals over real Redis: roles, N-of-M, expiry, races, reject, cancel, effects exactly once."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest

from bot import audit, flow
from bot.approval_outcome import Outcome
from bot.approvals import ApprovalService
from bot.errors import BotError, FlowError, PermissionDenied
from bot.models import (
    Approval,
    ApprovalStatus,
    CheckResult,
    Connection,
    EffectsState,
    Entity,
    EntityPlan,
    FieldPlan,
    FlowState,
)
from bot.roles import Roles
from bot.store import Store

TEAM = "T1"
ADMIN = "UADMIN"
LEADS = [f"ULEAD{i}" for i in range(20)]
BOTH = "UBOTH"  # an admin who is also a lead


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


class Effects:
    """Counts calls; `fail_with` makes on_approved raise until cleared."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []
        self.fail_with: Exception | None = None
        self._lock = threading.Lock()

    def _note(self, kind: str, approval: Approval) -> None:
        with self._lock:
            self.calls.append((kind, approval.id))

    def on_approved(self, approval: Approval) -> None:
        self._note("approved", approval)
        if self.fail_with is not None:
            raise self.fail_with

    def on_rejected(self, approval: Approval) -> None:
        self._note("rejected", approval)

    def on_expired(self, approval: Approval) -> None:
        self._note("expired", approval)

    def on_effects_failed(self, approval: Approval) -> None:
        self._note("effects_failed", approval)

    def count(self, kind: str) -> int:
        return sum(1 for k, _ in self.calls if k == kind)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def effects() -> Effects:
    return Effects()


@pytest.fixture
def make_service(store: Store, clock: Clock, effects: Effects) -> Callable[..., ApprovalService]:
    def make(required: int = 1, ttl_hours: float = 24) -> ApprovalService:
        roles = Roles(admins={ADMIN, BOTH}, leads={*LEADS, BOTH})
        return ApprovalService(
            store, required=required, ttl_hours=ttl_hours, roles=roles, effects=effects, clock=clock
        )

    return make


@pytest.fixture
def service(make_service: Callable[..., ApprovalService]) -> ApprovalService:
    return make_service()


def confirmed(store: Store, team_id: str = TEAM, requester: str = ADMIN) -> Connection:
    """A connection at Step 3, ready for Begin sync."""
    connection = flow.start_connection(store, team_id, requester)
    flow.record_credentials(
        store, team_id, connection.id, requester, url="https://org.crm.dynamics.com", username="s@org.com",
        sync_user_id="guid", checklist=[CheckResult(name="credentials valid", ok=True)],
    )
    flow.save_selection(store, team_id, connection.id, requester, {"lead": ["firstname"]})
    plan = FieldPlan(entities=[EntityPlan(entity=Entity.lead, mappings=[], id_field="dynamicsLeadId")])
    return flow.save_plan(store, team_id, connection.id, requester, plan)


def state(store: Store, connection: Connection) -> FlowState:
    return store.get_connection(connection.team_id, connection.id).state


def test_request_moves_the_connection_and_allows_one_pending(store: Store, service: ApprovalService) -> None:
    connection = confirmed(store)
    approval = service.request(TEAM, connection.id, ADMIN)
    assert approval.status == ApprovalStatus.pending and approval.required == 1
    assert approval.expires_at == approval.created_at + 24 * 3600
    stored = store.get_connection(TEAM, connection.id)
    assert (stored.state, stored.approval_id) == (FlowState.awaiting_approval, approval.id)
    assert service.pending_for(TEAM, connection.id) == approval
    with pytest.raises(FlowError, match="Waiting for a team lead"):
        service.request(TEAM, connection.id, ADMIN)


def test_request_is_refused_for_non_admins_and_impossible_quorums(
    store: Store, make_service: Callable[..., ApprovalService]
) -> None:
    connection = confirmed(store)
    with pytest.raises(PermissionDenied):
        make_service().request(TEAM, connection.id, LEADS[0])
    with pytest.raises(FlowError, match="TEAM_LEAD_USER_IDS"):
        make_service(required=21).request(TEAM, connection.id, BOTH)
    assert state(store, connection) == FlowState.confirm


def test_non_lead_and_self_approval_change_nothing(
    store: Store, service: ApprovalService, effects: Effects
) -> None:
    approval = service.request(TEAM, confirmed(store, requester=BOTH).id, BOTH)
    assert service.approve(TEAM, approval.id, ADMIN).outcome == Outcome.not_lead
    decision = service.approve(TEAM, approval.id, BOTH)
    assert decision.outcome == Outcome.self_approval and "own request" in decision.message
    assert service.get(TEAM, approval.id) == approval
    assert effects.calls == []


def test_two_of_three_with_a_duplicate_vote(store: Store, make_service: Callable[..., ApprovalService],
                                            effects: Effects) -> None:
    service = make_service(required=2)
    connection = confirmed(store)
    approval = service.request(TEAM, connection.id, ADMIN)
    first = service.approve(TEAM, approval.id, LEADS[0])
    assert first.outcome == Outcome.recorded and first.approval.approvers == [LEADS[0]]
    assert "1 of 2" in first.message
    assert service.approve(TEAM, approval.id, LEADS[0]).outcome == Outcome.duplicate_vote
    assert state(store, connection) == FlowState.awaiting_approval and effects.calls == []
    second = service.approve(TEAM, approval.id, LEADS[1])
    assert second.outcome == Outcome.approved
    assert second.approval.approvers == [LEADS[0], LEADS[1]] and second.approval.decided_by == LEADS[1]
    assert second.approval.effects_state == EffectsState.done
    assert service.approve(TEAM, approval.id, LEADS[2]).outcome == Outcome.already_decided
    assert effects.calls == [("approved", approval.id)]
    assert state(store, connection) == FlowState.approved
    log = [(e.actor, e.action) for e in audit.AuditLog(store).recent(TEAM, n=100)]
    assert log[-3:] == [
        (ADMIN, audit.APPROVAL_REQUESTED),
        (LEADS[0], audit.APPROVAL_RECORDED),
        (LEADS[1], audit.APPROVED),
    ]


def test_expiry_on_click_returns_the_connection_to_editable(
    store: Store, make_service: Callable[..., ApprovalService], clock: Clock, effects: Effects
) -> None:
    service = make_service(ttl_hours=0.5)
    connection = confirmed(store)
    approval = service.request(TEAM, connection.id, ADMIN)
    clock.now += 1800
    decision = service.approve(TEAM, approval.id, LEADS[0])
    assert decision.outcome == Outcome.expired and decision.approval.status == ApprovalStatus.expired
    assert decision.approval.approvers == []
    assert service.approve(TEAM, approval.id, LEADS[1]).outcome == Outcome.expired
    assert effects.calls == [("expired", approval.id)]
    stored = store.get_connection(TEAM, connection.id)
    assert (stored.state, stored.approval_id) == (FlowState.confirm, None) and flow.can_edit(stored)
    again = service.request(TEAM, connection.id, ADMIN)
    assert service.approve(TEAM, again.id, LEADS[0]).outcome == Outcome.approved
    assert audit.EXPIRED in [e.action for e in audit.AuditLog(store).recent(TEAM, n=100)]


def test_expire_due_sweeps_only_what_is_due(
    store: Store, service: ApprovalService, clock: Clock, effects: Effects
) -> None:
    connection = confirmed(store)
    approval = service.request(TEAM, connection.id, ADMIN)
    clock.now += 24 * 3600 - 1
    assert service.expire_due(TEAM) == []
    clock.now += 1
    [expired] = service.expire_due(TEAM)
    assert (expired.id, expired.status) == (approval.id, ApprovalStatus.expired)
    assert service.expire_due(TEAM) == []
    assert effects.calls == [("expired", approval.id)]
    assert state(store, connection) == FlowState.confirm


@pytest.mark.parametrize("same_lead", [False, True])
def test_twenty_simultaneous_approvals_run_effects_once(
    store: Store, service: ApprovalService, effects: Effects, same_lead: bool
) -> None:
    approval = service.request(TEAM, confirmed(store).id, ADMIN)
    barrier = threading.Barrier(20)

    def click(i: int) -> Outcome:
        barrier.wait()
        return service.approve(TEAM, approval.id, LEADS[0] if same_lead else LEADS[i]).outcome

    with ThreadPoolExecutor(20) as pool:
        outcomes = Counter(pool.map(click, range(20)))
    assert outcomes == {Outcome.approved: 1, Outcome.already_decided: 19}
    assert effects.calls == [("approved", approval.id)]
    actions = [e.action for e in audit.AuditLog(store).recent(TEAM, n=100)]
    assert actions.count(audit.APPROVED) == 1


def test_twenty_simultaneous_votes_on_two_of_n(
    store: Store, make_service: Callable[..., ApprovalService], effects: Effects
) -> None:
    service = make_service(required=2)
    approval = service.request(TEAM, confirmed(store).id, ADMIN)
    barrier = threading.Barrier(20)

    def click(i: int) -> Outcome:
        barrier.wait()
        return service.approve(TEAM, approval.id, LEADS[i]).outcome

    with ThreadPoolExecutor(20) as pool:
        outcomes = Counter(pool.map(click, range(20)))
    assert outcomes == {Outcome.recorded: 1, Outcome.approved: 1, Outcome.already_decided: 18}
    assert len(service.get(TEAM, approval.id).approvers) == 2
    assert effects.count("approved") == 1


def test_reject_needs_a_reason_and_refuses_a_second_decision(
    store: Store, service: ApprovalService, effects: Effects
) -> None:
    connection = confirmed(store)
    approval = service.request(TEAM, connection.id, ADMIN)
    with pytest.raises(FlowError, match="reason"):
        service.reject(TEAM, approval.id, LEADS[0], "   ")
    assert service.get(TEAM, approval.id).status == ApprovalStatus.pending
    assert service.reject(TEAM, approval.id, ADMIN, "no").outcome == Outcome.not_lead
    decision = service.reject(TEAM, approval.id, LEADS[0], " Wrong org, use the sandbox first ")
    assert decision.outcome == Outcome.rejected
    assert (decision.approval.reason, decision.approval.decided_by) == ("Wrong org, use the sandbox first", LEADS[0])
    assert state(store, connection) == FlowState.confirm
    assert service.approve(TEAM, approval.id, LEADS[1]).outcome == Outcome.already_decided
    assert service.reject(TEAM, approval.id, LEADS[1], "also no").outcome == Outcome.already_decided
    assert effects.calls == [("rejected", approval.id)]
    entry = audit.AuditLog(store).recent(TEAM)[-1]
    assert (entry.actor, entry.action, entry.connection_id) == (LEADS[0], audit.REJECTED, connection.id)


def test_the_requester_cannot_reject_but_can_cancel(store: Store, service: ApprovalService) -> None:
    connection = confirmed(store, requester=BOTH)
    approval = service.request(TEAM, connection.id, BOTH)
    refused = service.reject(TEAM, approval.id, BOTH, "changed my mind")
    assert refused.outcome == Outcome.self_approval and "cancel" in refused.message
    with pytest.raises(PermissionDenied):
        service.cancel(TEAM, connection.id, LEADS[0])
    decision = service.cancel(TEAM, connection.id, BOTH)
    assert decision.outcome == Outcome.cancelled and decision.approval.status == ApprovalStatus.cancelled
    assert state(store, connection) == FlowState.confirm
    assert service.approve(TEAM, approval.id, LEADS[0]).outcome == Outcome.already_decided
    assert service.cancel(TEAM, connection.id, BOTH).outcome == Outcome.not_found
    assert audit.AuditLog(store).recent(TEAM)[-1].action == audit.APPROVAL_CANCELLED


def test_forged_and_other_teams_ids_change_nothing(store: Store, service: ApprovalService, effects: Effects) -> None:
    approval = service.request(TEAM, confirmed(store).id, ADMIN)
    other = service.request("T2", confirmed(store, team_id="T2").id, ADMIN)
    assert service.approve(TEAM, "forged0000000000", LEADS[0]).outcome == Outcome.not_found
    assert service.approve(TEAM, other.id, LEADS[0]).outcome == Outcome.not_found
    assert service.reject(TEAM, other.id, LEADS[0], "x").outcome == Outcome.not_found
    assert service.retry_effects(TEAM, other.id, LEADS[0]).outcome == Outcome.not_found
    assert service.get("T2", other.id) == other and service.get(TEAM, approval.id) == approval
    assert effects.calls == []


def test_failed_effects_are_recorded_and_retried_once(
    store: Store, service: ApprovalService, effects: Effects
) -> None:
    connection = confirmed(store)
    approval = service.request(TEAM, connection.id, ADMIN)
    effects.fail_with = BotError("Marketo refused to create the fields: the API user lacks Read-Write Schema.")
    decision = service.approve(TEAM, approval.id, LEADS[0])
    assert decision.outcome == Outcome.approved and decision.effects_failed
    assert "Read-Write Schema" in decision.message
    stored = store.get_connection(TEAM, connection.id)
    assert stored.state == FlowState.approved and "Read-Write Schema" in (stored.error or "")
    assert audit.AuditLog(store).recent(TEAM)[-1].action == audit.EFFECTS_FAILED

    assert service.approve(TEAM, approval.id, LEADS[1]).outcome == Outcome.already_decided
    assert service.retry_effects(TEAM, approval.id, ADMIN).outcome == Outcome.not_lead
    assert effects.count("approved") == 1

    effects.fail_with = None
    retried = service.retry_effects(TEAM, approval.id, LEADS[1])
    assert retried.outcome == Outcome.approved and retried.approval.effects_state == EffectsState.done
    assert store.get_connection(TEAM, connection.id).error is None
    assert service.retry_effects(TEAM, approval.id, LEADS[1]).outcome == Outcome.already_decided
    assert service.approve(TEAM, approval.id, LEADS[2]).outcome == Outcome.already_decided
    assert effects.count("approved") == 2


def test_unexpected_effect_errors_never_leak_their_text(
    store: Store, service: ApprovalService, effects: Effects
) -> None:
    approval = service.request(TEAM, confirmed(store).id, ADMIN)
    effects.fail_with = RuntimeError("token=sk-live-very-secret")
    decision = service.approve(TEAM, approval.id, LEADS[0])
    assert decision.effects_failed
    texts = [decision.message, decision.approval.effects_error or ""]
    texts += [e.detail for e in audit.AuditLog(store).recent(TEAM, n=100)]
    assert all("very-secret" not in text for text in texts)
    assert "RuntimeError" in decision.approval.effects_error


def test_stale_running_effects_can_be_retried_after_a_crash(
    store: Store, service: ApprovalService, clock: Clock, effects: Effects
) -> None:
    approval = service.request(TEAM, confirmed(store).id, ADMIN)

    def crashed(current: Approval) -> Approval:
        return current.model_copy(
            update={"status": ApprovalStatus.approved, "effects_state": EffectsState.running,
                    "effects_started_at": clock.now}
        )

    store.update_approval(TEAM, approval.id, crashed)
    assert service.retry_effects(TEAM, approval.id, LEADS[0]).outcome == Outcome.already_decided
    clock.now += service.effects_stale_after
    assert service.retry_effects(TEAM, approval.id, LEADS[0]).outcome == Outcome.approved
    assert effects.calls == [("approved", approval.id)]


def test_message_locations_are_kept_once_each(store: Store, service: ApprovalService) -> None:
    approval = service.request(TEAM, confirmed(store).id, ADMIN)
    service.add_message(TEAM, approval.id, "CAPPROVALS", "1700000000.000100")
    service.add_message(TEAM, approval.id, "D0LEAD", "1700000000.000200")
    stored = service.add_message(TEAM, approval.id, "CAPPROVALS", "1700000000.000100")
    assert stored.messages == [("CAPPROVALS", "1700000000.000100"), ("D0LEAD", "1700000000.000200")]
    assert service.add_message(TEAM, "forged", "C1", "1.0") is None
    decided = service.approve(TEAM, approval.id, LEADS[0]).approval
    assert decided.messages == stored.messages
