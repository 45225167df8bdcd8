"""New credentials for a connection whose initial sync paused on the old ones: real Redis, the Dynamics
emulator over loopback. The run resumes from its checkpoints; another sync user is refused."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import redis
from rq import Queue

from bot import audit, flow
from bot.audit import AuditLog
from bot.config import Settings
from bot.dynamics.preflight import run_preflight
from bot.errors import FlowError
from bot.models import CheckResult, Credentials, Entity, EntityPlan, FieldPlan, FlowState, RunStatus
from bot.steps import renew
from bot.store import Store
from bot.sync.checkpoint import EntityState, RunState
from bot.sync.runs import start_initial_sync
from bot.sync.settle import settle
from sandbox.dynamics import DynamicsEmulator, EmulatedUser

TEAM = "T1"
ADMIN = "UADMIN"
USER = "sync@contoso.com"
PASSWORD = "Passw0rd!"
NEW_PASSWORD = "N3w-Passw0rd!"


@pytest.fixture
def emulator(start_dynamics: Callable[..., DynamicsEmulator]) -> DynamicsEmulator:
    return start_dynamics(users=[EmulatedUser(username=USER, password=PASSWORD), EmulatedUser(username="other@contoso.com")])


@pytest.fixture
def settings(emulator: DynamicsEmulator) -> Settings:
    return Settings(ENTRA_AUTHORITY_HOST=emulator.authority_host, CA_BUNDLE=emulator.ca_path,
                    DYNAMICS_HOST_ALLOWLIST="localhost", INCREMENTAL_SYNC_MINUTES=60)


@pytest.fixture
def queue(redis_client: redis.Redis, key_prefix: str) -> Queue:
    return Queue(f"{key_prefix}-sync", connection=redis_client)


def credentials(emulator: DynamicsEmulator, password: str = PASSWORD, username: str = USER) -> Credentials:
    return Credentials(username=username, password=password, url=emulator.url)


def paused_on_old_password(store: Store, queue: Queue, settings: Settings, emulator: DynamicsEmulator) -> str:
    """A connection whose initial sync paused (its lead job could not sign in); returns the run id."""
    checked = run_preflight(credentials(emulator), settings)
    connection = flow.start_connection(store, TEAM, ADMIN)
    flow.record_credentials(store, TEAM, connection.id, ADMIN, url=emulator.url, username=USER,
                            sync_user_id=checked.sync_user_id, organization_id=checked.organization_id,
                            checklist=[CheckResult(name="ok", ok=True)], credentials=credentials(emulator))
    flow.save_selection(store, TEAM, connection.id, ADMIN, {"lead": ["firstname"]})
    plan = FieldPlan(entities=[EntityPlan(entity=Entity.lead, mappings=[], id_field="dynamicsLeadId")])
    flow.save_plan(store, TEAM, connection.id, ADMIN, plan)
    flow.request_approval(store, TEAM, connection.id, "approval1")
    run = start_initial_sync(store, queue, flow.approve(store, TEAM, connection.id, "approval1"))
    settle(store, None, RunState(store, TEAM, run.id).set_state(Entity.lead, EntityState.paused, "Wrong password"))
    emulator.change_password(USER, NEW_PASSWORD)
    return run.id


def test_a_paused_run_resumes_with_the_new_password(store: Store, queue: Queue, settings: Settings,
                                                     emulator: DynamicsEmulator) -> None:
    run_id = paused_on_old_password(store, queue, settings, emulator)
    connection = store.active_connection(TEAM)
    assert connection.state == FlowState.paused
    jobs_before = list(queue.job_ids)

    refused = renew.check_renewal(store, queue, settings, AuditLog(store), TEAM, ADMIN, connection.id,
                                  credentials(emulator))
    assert "did not pass" in str(refused.to_dict())
    assert store.load_credentials(TEAM, connection.id).password.get_secret_value() == PASSWORD

    done = renew.check_renewal(store, queue, settings, AuditLog(store), TEAM, ADMIN, connection.id,
                               credentials(emulator, NEW_PASSWORD))
    assert "resumed from its last checkpoint" in str(done.to_dict())
    assert store.load_credentials(TEAM, connection.id).password.get_secret_value() == NEW_PASSWORD
    assert store.get_run(TEAM, run_id).status == RunStatus.running
    assert store.active_connection(TEAM).state == FlowState.syncing
    assert [job for job in queue.job_ids if job not in jobs_before] == [f"sync-{run_id}-lead-2"]
    actions = [entry.action for entry in AuditLog(store).recent(TEAM, 5)]
    assert actions[-2:] == [audit.CREDENTIALS_RENEWED, audit.SYNC_RESUMED]
    assert store.incremental.due_at(TEAM, connection.id) is None, "no incremental cycle before the initial sync ends"


def test_another_sync_user_and_a_draft_are_refused(store: Store, queue: Queue, settings: Settings,
                                                   emulator: DynamicsEmulator) -> None:
    paused_on_old_password(store, queue, settings, emulator)
    connection = store.active_connection(TEAM)
    other = run_preflight(credentials(emulator, username="other@contoso.com"), settings)
    with pytest.raises(FlowError, match="another Dynamics user"):
        flow.renew_credentials(store, TEAM, connection.id, ADMIN, organization_id=other.organization_id,
                               sync_user_id=other.sync_user_id, credentials=credentials(emulator, NEW_PASSWORD))
    assert store.load_credentials(TEAM, connection.id).password.get_secret_value() == PASSWORD

    draft = flow.start_connection(store, "T2", ADMIN)
    with pytest.raises(FlowError, match="no running or finished sync"):
        renew.renew_form(store, "T2")
    with pytest.raises(FlowError, match="can't be done now"):
        flow.renew_credentials(store, "T2", draft.id, ADMIN, organization_id=None, sync_user_id=None,
                               credentials=credentials(emulator, NEW_PASSWORD))
