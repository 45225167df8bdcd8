"""Deciding and stopping without Slack: approve / reject, cancel / resume, over a real Redis store."""

from __future__ import annotations

import pytest
import redis
from rq import Queue

from bot import audit
from bot.approvals import ApprovalService
from bot.models import Approval, ApprovalStatus, FlowState
from bot.notify import Notifier
from bot.roles import Roles
from bot.steps import control, decide
from bot.store import Store
from bot.views import ids
from tests.support.connections import at_confirm

TEAM = "T1"
ADMIN = "UADMIN"
LEADS = ("ULEAD1", "ULEAD2")


class Effects:
    """Records what would be shown in Slack: every update of the request messages, every decision."""

    def __init__(self) -> None:
        self.updated: list[Approval] = []
        self.decided: list[str] = []

    def update_messages(self, approval: Approval) -> None:
        self.updated.append(approval)

    def on_approved(self, approval: Approval) -> None:
        self.decided.append("approved")

    def on_rejected(self, approval: Approval) -> None:
        self.decided.append("rejected")

    def on_expired(self, approval: Approval) -> None:
        self.decided.append("expired")

    def on_effects_failed(self, approval: Approval) -> None:
        self.updated.append(approval)


@pytest.fixture
def effects() -> Effects:
    return Effects()


def approvals_for(store: Store, effects: Effects, required: int = 1) -> ApprovalService:
    return ApprovalService(store, required=required, roles=Roles(admins={ADMIN}, leads=set(LEADS)), effects=effects)


@pytest.fixture
def approvals(store: Store, effects: Effects) -> ApprovalService:
    return approvals_for(store, effects)


@pytest.fixture
def queue(redis_client: redis.Redis, key_prefix: str) -> Queue:
    return Queue(f"{key_prefix}-sync", connection=redis_client)


def requested(store: Store, approvals: ApprovalService) -> Approval:
    return approvals.request(TEAM, at_confirm(store, TEAM, ADMIN).id, ADMIN)


def cancel(store: Store, approvals: ApprovalService, effects: Effects) -> str:
    # The notifier is only used to announce a cancelled sync; none runs in these tests.
    notifier: Notifier = None  # type: ignore[assignment]
    return control.cancel_current(store, approvals, effects, audit.AuditLog(store), notifier, TEAM, ADMIN)


# -- approve / reject --------------------------------------------------------------------------------

def test_the_last_approval_says_nothing_more(store: Store, approvals: ApprovalService, effects: Effects) -> None:
    approval = requested(store, approvals)
    assert decide.approve(approvals, effects, TEAM, LEADS[0], approval.id) is None
    assert effects.decided == ["approved"]


def test_a_vote_short_of_enough_updates_the_request_and_says_how_many_more(store: Store, effects: Effects) -> None:
    approvals = approvals_for(store, effects, required=2)
    approval = requested(store, approvals)
    text = decide.approve(approvals, effects, TEAM, LEADS[0], approval.id)
    assert text is not None and "1 of 2" in text
    assert [a.approvers for a in effects.updated] == [[LEADS[0]]] and effects.decided == []


def test_an_unknown_request_is_told(approvals: ApprovalService, effects: Effects) -> None:
    assert "no longer exists" in decide.approve(approvals, effects, TEAM, LEADS[0], "no-such-approval")
    assert decide.reason_form(approvals, TEAM, LEADS[0], "no-such-approval") == decide.REQUEST_GONE


def test_the_reason_form_is_for_another_lead_only(store: Store, effects: Effects) -> None:
    approvals = ApprovalService(store, roles=Roles(admins={ADMIN}, leads={ADMIN, *LEADS}), effects=effects)
    approval = requested(store, approvals)
    assert decide.reason_form(approvals, TEAM, ADMIN, approval.id) == decide.OWN_REQUEST
    form = decide.reason_form(approvals, TEAM, LEADS[0], approval.id)
    assert not isinstance(form, str) and form.to_dict()["callback_id"] == ids.REJECT_REASON_CALLBACK
    assert approval.id in form.private_metadata


def test_a_rejection_needs_a_reason(store: Store, approvals: ApprovalService, effects: Effects) -> None:
    assert decide.reason_errors("   ") == {ids.REJECT_REASON_BLOCK: decide.REASON_NEEDED}
    assert decide.reason_errors("too many fields") == {}
    approval = requested(store, approvals)
    assert "Rejected" in decide.reject(approvals, TEAM, LEADS[0], approval.id, "  too many fields ")
    assert store.get_approval(TEAM, approval.id).reason == "too many fields"
    assert effects.decided == ["rejected"]


# -- cancel / resume ---------------------------------------------------------------------------------

def test_nothing_to_cancel_or_resume_without_a_connection(
        store: Store, approvals: ApprovalService, effects: Effects, queue: Queue) -> None:
    assert cancel(store, approvals, effects) == "Nothing to cancel: no connection is in progress."
    assert control.resume_current(store, queue, audit.AuditLog(store), TEAM, ADMIN) == (
        "Nothing to resume: no sync has run yet.")


def test_cancel_drops_a_draft(store: Store, approvals: ApprovalService, effects: Effects) -> None:
    connection = at_confirm(store, TEAM, ADMIN)
    assert cancel(store, approvals, effects) == control.DRAFT_CANCELLED
    assert store.get_connection(TEAM, connection.id).state == FlowState.cancelled


def test_cancel_withdraws_a_pending_request_and_updates_its_messages(
        store: Store, approvals: ApprovalService, effects: Effects) -> None:
    approval = requested(store, approvals)
    assert "withdrawn" in cancel(store, approvals, effects)
    assert [a.status for a in effects.updated] == [ApprovalStatus.cancelled]
    assert store.get_connection(TEAM, approval.connection_id).state == FlowState.confirm


def test_an_approved_connection_without_a_run_has_nothing_to_cancel(
        store: Store, approvals: ApprovalService, effects: Effects) -> None:
    approval = requested(store, approvals)
    decide.approve(approvals, effects, TEAM, LEADS[0], approval.id)
    assert cancel(store, approvals, effects) == "Nothing to cancel: the connection is approved."
