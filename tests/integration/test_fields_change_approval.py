"""A change of fields over real Redis: proposed beside a synced connection, approved or turned down by
the leads under the approval rules, without ever moving the connection out of `synced`."""

from __future__ import annotations

import pytest

from bot import flow
from bot.approval_outcome import Outcome
from bot.approvals import ApprovalService
from bot.errors import FlowError
from bot.models import Approval, ApprovalKind, Connection, FieldsChange, FlowState
from bot.roles import Roles
from bot.store import Store
from tests.support.connections import PLAN

TEAM, ADMIN, LEAD = "T1", "UADMIN", "ULEAD"


class Effects:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.approved: list[Approval] = []

    def on_approved(self, approval: Approval) -> None:
        self.approved.append(approval)
        flow.apply_fields_change(self.store, approval.team_id, approval.connection_id, approval.id, None)

    def on_rejected(self, approval: Approval) -> None: ...

    def on_expired(self, approval: Approval) -> None: ...


@pytest.fixture
def synced(store: Store) -> Connection:
    connection = Connection(team_id=TEAM, requester=ADMIN, state=FlowState.synced, plan=PLAN,
                            selected={"lead": ["firstname"]}, approval_id="initial")
    store.save_connection(connection)
    store.set_active_connection(TEAM, connection.id)
    return connection


@pytest.fixture
def service(store: Store) -> ApprovalService:
    return ApprovalService(store, roles=Roles([ADMIN], [LEAD, ADMIN]), effects=Effects(store))


def _propose(store: Store, connection: Connection, service: ApprovalService) -> Approval:
    proposed = PLAN.model_copy(deep=True)
    flow.propose_fields_change(store, TEAM, connection.id, ADMIN, {"lead": ["firstname", "new_b"]}, proposed)
    return service.request_fields_change(TEAM, connection.id, ADMIN, FieldsChange(added={"lead": ["new_b"]}))


def test_an_approved_change_switches_the_plan_and_stays_synced(store: Store, synced: Connection,
                                                               service: ApprovalService) -> None:
    approval = _propose(store, synced, service)
    assert approval.kind == ApprovalKind.fields_change
    with pytest.raises(FlowError, match="already waiting"):
        _propose(store, synced, service)
    assert service.approve(TEAM, approval.id, ADMIN).outcome == Outcome.self_approval
    assert service.approve(TEAM, approval.id, LEAD).outcome == Outcome.approved
    assert service.approve(TEAM, approval.id, LEAD).outcome == Outcome.already_decided
    connection = store.get_connection(TEAM, synced.id)
    assert connection.state == FlowState.synced and connection.approval_id == "initial"
    assert connection.selected == {"lead": ["firstname", "new_b"]}
    assert connection.pending_plan is None and connection.change_approval_id is None
    assert len(service.effects.approved) == 1


def test_a_rejected_change_is_dropped(store: Store, synced: Connection, service: ApprovalService) -> None:
    approval = _propose(store, synced, service)
    assert service.reject(TEAM, approval.id, LEAD, "not now").outcome == Outcome.rejected
    connection = store.get_connection(TEAM, synced.id)
    assert connection.state == FlowState.synced and connection.selected == {"lead": ["firstname"]}
    assert connection.pending_plan is None and connection.change_approval_id is None
    _propose(store, synced, service)  # a new change may be proposed


def test_only_a_synced_connection_takes_a_change(store: Store, synced: Connection) -> None:
    store.update_connection(TEAM, synced.id, lambda c: c.model_copy(update={"state": FlowState.syncing}))
    with pytest.raises(FlowError):
        flow.propose_fields_change(store, TEAM, synced.id, ADMIN, {"lead": ["firstname"]}, PLAN)
