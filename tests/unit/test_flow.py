"""The connection state machine over a real Redis store."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from pydantic import SecretStr

from bot import audit, flow
from bot.errors import FlowError
from bot.models import (
    CheckResult,
    Connection,
    Credentials,
    Entity,
    EntityPlan,
    FieldPlan,
    FlowState,
    MarketoField,
    RunStatus,
    SyncRun,
)
from bot.store import Store

TEAM = "T1"
ADMIN = "UADMIN"
URL = "https://org.crm.dynamics.com"
ORG = "6f0c2b1e-0000-4000-8000-00000000000a"
OTHER_ORG = "6f0c2b1e-0000-4000-8000-00000000000b"
PASSING = [CheckResult(name="URL reachable", ok=True), CheckResult(name="credentials valid", ok=True)]
PLAN = FieldPlan(
    entities=[EntityPlan(entity=Entity.lead, mappings=[], id_field="dynamicsLeadId", record_count=12)],
    fields_to_create=[MarketoField(name="dynamicsLeadId", display_name="Dynamics Lead Id", data_type="string")],
)


def verify(store: Store, connection: Connection, url: str = URL, **extra: object) -> Connection:
    return flow.record_credentials(
        store, TEAM, connection.id, ADMIN, url=url, username="sync@org.com", sync_user_id="guid-1",
        checklist=PASSING, **extra,
    )


def at_confirm(store: Store) -> Connection:
    connection = verify(store, flow.start_connection(store, TEAM, ADMIN))
    flow.save_selection(store, TEAM, connection.id, ADMIN, {"lead": ["firstname", "lastname"]})
    return flow.save_plan(store, TEAM, connection.id, ADMIN, PLAN)


def actions(store: Store) -> list[tuple[str, str]]:
    return [(e.actor, e.action) for e in audit.AuditLog(store).recent(TEAM, n=100)]


def test_the_steps_in_order_with_an_audit_entry_each(store: Store) -> None:
    connection = flow.start_connection(store, TEAM, ADMIN)
    assert connection.state == FlowState.credentials and flow.can_edit(connection)
    connection = verify(store, connection, url=URL + "/")
    assert (connection.state, connection.dynamics_url, connection.sync_user_id) == (FlowState.fields, URL, "guid-1")
    connection = flow.save_selection(store, TEAM, connection.id, ADMIN, {"lead": ["firstname", "firstname"]})
    assert connection.selected == {"lead": ["firstname"]}
    connection = flow.save_plan(store, TEAM, connection.id, ADMIN, PLAN, duplicate_count=2)
    assert connection.state == FlowState.confirm and connection.duplicate_count == 2
    connection = flow.set_notify_email(store, TEAM, connection.id, ADMIN, " Ops@Example.com ")
    assert connection.notify_email == "Ops@example.com"
    assert store.get_connection(TEAM, connection.id) == connection
    assert actions(store) == [
        (ADMIN, audit.CONNECTION_STARTED),
        (ADMIN, audit.CREDENTIALS_VERIFIED),
        (ADMIN, audit.FIELDS_SELECTED),
        (ADMIN, audit.PLAN_SAVED),
        (ADMIN, audit.NOTIFY_EMAIL_SET),
    ]


def test_restarting_a_draft_resumes_it(store: Store) -> None:
    first = verify(store, flow.start_connection(store, TEAM, ADMIN))
    again = flow.start_connection(store, TEAM, "UOTHERADMIN")
    assert again.id == first.id and again.state == FlowState.fields
    assert [a for _, a in actions(store)].count(audit.CONNECTION_STARTED) == 1


def test_concurrent_starts_create_one_connection(store: Store) -> None:
    barrier = threading.Barrier(10)

    def start(_: int) -> str:
        barrier.wait()
        return flow.start_connection(store, TEAM, ADMIN).id

    with ThreadPoolExecutor(10) as pool:
        ids = set(pool.map(start, range(10)))
    assert len(ids) == 1
    assert [a for _, a in actions(store)].count(audit.CONNECTION_STARTED) == 1
    assert store.redis.exists(store.keys.flow_lock(TEAM)) == 0  # the start guard is released


def test_a_failing_checklist_is_refused_and_nothing_changes(store: Store) -> None:
    connection = flow.start_connection(store, TEAM, ADMIN)
    failing = [*PASSING, CheckResult(name="sync user role", ok=False, fix="assign the role")]
    with pytest.raises(FlowError, match="sync user role"):
        flow.record_credentials(
            store, TEAM, connection.id, ADMIN, url=URL, username="u@org.com", sync_user_id="g", checklist=failing
        )
    assert store.get_connection(TEAM, connection.id).state == FlowState.credentials


def test_credentials_are_stored_encrypted_and_never_audited(store: Store) -> None:
    connection = flow.start_connection(store, TEAM, ADMIN)
    credentials = Credentials(username="sync@org.com", password=SecretStr("hunter2-secret"), url=URL)
    verify(store, connection, credentials=credentials)
    assert store.load_credentials(TEAM, connection.id).password.get_secret_value() == "hunter2-secret"
    raw = b"".join(store.redis.get(k) or b"" for k in store.redis.scan_iter(match=f"{store.prefix}:*")
                   if store.redis.type(k) == b"string")
    assert b"hunter2-secret" not in raw
    assert all("hunter2" not in e.detail for e in audit.AuditLog(store).recent(TEAM, n=100))


def test_the_same_org_under_another_url_keeps_the_selection_and_plan(store: Store) -> None:
    connection = flow.start_connection(store, TEAM, ADMIN)
    verify(store, connection, organization_id=ORG)
    flow.save_selection(store, TEAM, connection.id, ADMIN, {"lead": ["firstname"]})
    flow.save_plan(store, TEAM, connection.id, ADMIN, PLAN, duplicate_count=3, duplicate_records=7)
    same = verify(store, connection, url="https://crm.org.example", organization_id=ORG)
    assert (same.dynamics_url, same.organization_id) == ("https://crm.org.example", ORG)
    assert same.plan is not None and same.duplicate_records == 7
    other = verify(store, connection, url="https://crm.org.example", organization_id=OTHER_ORG)
    assert other.plan is None and other.selected == {} and other.duplicate_records is None


def test_a_different_org_clears_the_selection_and_plan(store: Store) -> None:
    connection = at_confirm(store)
    connection = verify(store, connection, url="https://other.crm4.dynamics.com")
    assert connection.state == FlowState.fields and connection.plan is None and connection.selected == {}
    same = at_confirm(store)
    same = verify(store, same, url="HTTPS://ORG.crm.dynamics.com/")
    assert same.selected == {"lead": ["firstname", "lastname"]} and same.plan is not None


def test_a_new_selection_sends_the_plan_back_to_step_two(store: Store) -> None:
    connection = at_confirm(store)
    connection = flow.save_selection(store, TEAM, connection.id, ADMIN, {"contact": ["emailaddress1"]})
    assert connection.state == FlowState.fields and connection.plan is None
    with pytest.raises(FlowError, match="at least one field"):
        flow.save_selection(store, TEAM, connection.id, ADMIN, {"lead": []})


def test_an_action_that_does_not_fit_the_state_is_refused_plainly(store: Store) -> None:
    connection = flow.start_connection(store, TEAM, ADMIN)
    with pytest.raises(FlowError) as raised:
        flow.save_plan(store, TEAM, connection.id, ADMIN, PLAN)
    assert "Step 1" in raised.value.user_message and "/connect-dynamics status" in raised.value.user_message
    with pytest.raises(FlowError, match="no longer exists"):
        flow.request_approval(store, TEAM, "nope", "a1")
    with pytest.raises(FlowError, match="email address"):
        flow.set_notify_email(store, TEAM, at_confirm(store).id, ADMIN, "not-an-email")


def test_transition_is_atomic_under_concurrency(store: Store) -> None:
    connection = at_confirm(store)
    barrier = threading.Barrier(10)

    def move(i: int) -> bool:
        barrier.wait()
        try:
            flow.request_approval(store, TEAM, connection.id, f"a{i}")
        except FlowError:
            return False
        return True

    with ThreadPoolExecutor(10) as pool:
        results = list(pool.map(move, range(10)))
    assert results.count(True) == 1
    stored = store.get_connection(TEAM, connection.id)
    assert stored.state == FlowState.awaiting_approval and stored.approval_id == f"a{results.index(True)}"
    assert not flow.can_edit(stored)


def test_start_is_refused_while_awaiting_approval(store: Store) -> None:
    connection = at_confirm(store)
    flow.request_approval(store, TEAM, connection.id, "a1")
    with pytest.raises(FlowError, match="waiting for a team lead"):
        flow.start_connection(store, TEAM, ADMIN)


def test_locked_org_refuses_a_new_connection_and_another_org(store: Store) -> None:
    connection = verify(store, flow.start_connection(store, TEAM, ADMIN), organization_id=ORG)
    flow.save_selection(store, TEAM, connection.id, ADMIN, {"lead": ["firstname", "lastname"]})
    connection = flow.save_plan(store, TEAM, connection.id, ADMIN, PLAN)
    flow.request_approval(store, TEAM, connection.id, "a1")
    flow.approve(store, TEAM, connection.id, "a1")
    flow.lock_dynamics_org(store, connection, URL)
    flow.start_sync(store, TEAM, connection.id, "r1")
    run = SyncRun(id="r1", team_id=TEAM, connection_id=connection.id, requester=ADMIN, status=RunStatus.finished)
    assert flow.follow_run(store, run).state == FlowState.synced
    with pytest.raises(FlowError) as raised:
        flow.start_connection(store, TEAM, ADMIN)
    assert raised.value.user_message == flow.locked_message(URL)
    assert "cannot be re-pointed to another org without a new subscription" in raised.value.user_message

    flow.follow_run(store, run.model_copy(update={"status": RunStatus.failed}))
    retry = flow.start_connection(store, TEAM, ADMIN)
    assert retry.id != connection.id and retry.dynamics_url == URL
    with pytest.raises(FlowError, match="already connected to https://org.crm.dynamics.com"):
        verify(store, retry, url="https://another.crm.dynamics.com", organization_id=OTHER_ORG)
    with pytest.raises(FlowError, match="already connected to https://org.crm.dynamics.com"):
        verify(store, retry, url=URL, organization_id=OTHER_ORG)
    assert verify(store, retry, url="https://crm.org.example", organization_id=ORG.upper()).state == FlowState.fields


def test_cancel_a_draft_lets_a_new_one_start(store: Store) -> None:
    connection = flow.start_connection(store, TEAM, ADMIN)
    assert flow.cancel_connection(store, TEAM, connection.id, ADMIN).state == FlowState.cancelled
    assert flow.start_connection(store, TEAM, ADMIN).id != connection.id
    assert actions(store)[1] == (ADMIN, audit.CONNECTION_CANCELLED)


# -- the transition table ------------------------------------------------------------------------------


@pytest.mark.parametrize(("move", "state"), [
    ("verify_credentials", FlowState.credentials),
    ("request_approval", FlowState.confirm),
    ("approve", FlowState.awaiting_approval),
    ("release_to_confirm", FlowState.awaiting_approval),
    ("start_sync", FlowState.approved),
    ("start_sync", FlowState.synced),  # a re-read after an expired change token
    ("sync_paused", FlowState.syncing),
    ("sync_running", FlowState.paused),
    ("sync_finished", FlowState.syncing),
    ("cancel", FlowState.confirm),
])
def test_allowed_moves(move: str, state: FlowState) -> None:
    assert flow.allowed(move, state)


@pytest.mark.parametrize(("move", "state"), [
    ("verify_credentials", FlowState.awaiting_approval),
    ("save_plan", FlowState.credentials),
    ("request_approval", FlowState.fields),
    ("approve", FlowState.confirm),
    ("release_to_confirm", FlowState.approved),
    ("start_sync", FlowState.confirm),
    ("start_sync", FlowState.cancelled),
    ("sync_finished", FlowState.confirm),
    ("cancel", FlowState.syncing),
    ("cancel", FlowState.awaiting_approval),
])
def test_refused_moves(move: str, state: FlowState) -> None:
    assert not flow.allowed(move, state)


def test_every_state_has_a_text_and_every_run_status_names_a_move() -> None:
    assert set(flow.STATE_TEXT) == set(FlowState)
    assert set(flow.RUN_MOVES) == set(RunStatus)
    assert set(flow.RUN_MOVES.values()) <= set(flow.TRANSITIONS)


def test_a_refused_move_changes_nothing(store: Store) -> None:
    connection = at_confirm(store)
    with pytest.raises(FlowError, match="Step 3 of 3"):
        flow.start_sync(store, TEAM, connection.id, "r1")
    stored = store.get_connection(TEAM, connection.id)
    assert (stored.state, stored.run_id) == (FlowState.confirm, None)


def test_a_connection_follows_only_its_own_run(store: Store) -> None:
    connection = at_confirm(store)
    flow.request_approval(store, TEAM, connection.id, "a1")
    assert flow.approve(store, TEAM, connection.id, "another approval") is None
    assert flow.approve(store, TEAM, connection.id, "a1").state == FlowState.approved
    flow.start_sync(store, TEAM, connection.id, "r2")
    old = SyncRun(id="r1", team_id=TEAM, connection_id=connection.id, requester=ADMIN, status=RunStatus.failed)
    assert flow.follow_run(store, old) is None
    current = old.model_copy(update={"id": "r2", "status": RunStatus.paused})
    assert flow.follow_run(store, current).state == FlowState.paused
    assert flow.follow_run(store, current.model_copy(update={"status": RunStatus.running})).state == FlowState.syncing
