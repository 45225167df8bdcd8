"""An approval whose effects failed, over real Redis: a retry skips what is recorded as done, and a
withdrawal unlocks the Marketo instance only when no Marketo field was created and this connection
holds the lock."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis
from rq import Queue

from bot import flow
from bot.approval_outcome import Outcome
from bot.approvals import ApprovalService
from bot.config import Settings
from bot.container import Container
from bot.crypto import SecretBox
from bot.errors import BotError
from bot.models import Approval, ApprovalStatus, Connection, DynamicsLock, EffectsState, EffectStep, FlowState
from bot.roles import Roles
from bot.store import Store
from bot.sync.runs import start_initial_sync
from sandbox.marketo import MarketoEmulator
from sandbox.slack import SlackEmulator
from tests.conftest import REDIS_URL
from tests.integration.test_approvals import ADMIN, LEADS, TEAM, Effects, confirmed


@pytest.fixture
def instance_store(redis_client: redis.Redis, key_prefix: str, encryption_key: str) -> Store:
    return Store(redis_client, SecretBox(encryption_key), prefix=key_prefix, marketo_instance="instance-1")


@pytest.fixture
def failing() -> Effects:
    effects = Effects()
    effects.fail_with = BotError("Marketo refused to create some fields.")
    return effects


def stuck(store: Store, effects: Effects, created: list[str]) -> tuple[ApprovalService, Connection, Approval]:
    """An approved request whose effects failed after locking the org and creating `created`."""
    service = ApprovalService(store, roles=Roles(admins={ADMIN}, leads=set(LEADS)), effects=effects)
    connection = confirmed(store)
    requested = service.request(TEAM, connection.id, ADMIN)
    flow.lock_dynamics_org(store, store.get_connection(TEAM, connection.id), connection.dynamics_url or "")
    store.update_approval(TEAM, requested.id, lambda a: a.with_step(EffectStep.org_locked).sending_fields(
        created).fields_answered(created))
    decision = service.approve(TEAM, requested.id, LEADS[0])
    assert decision.effects_failed and effects.count("effects_failed") == 1
    return service, connection, decision.approval


def test_withdrawing_before_any_field_was_created_unlocks_the_instance(instance_store: Store,
                                                                       failing: Effects) -> None:
    service, connection, approval = stuck(instance_store, failing, created=[])
    decision = service.cancel(TEAM, connection.id, ADMIN)
    assert decision.outcome == Outcome.cancelled and "no longer locked" in decision.message
    assert instance_store.get_approval(TEAM, approval.id).status == ApprovalStatus.cancelled
    conn = instance_store.get_connection(TEAM, connection.id)
    assert (conn.state, conn.approval_id) == (FlowState.confirm, None)
    assert instance_store.dynamics_locks(TEAM) == []
    assert service.retry_effects(TEAM, approval.id, LEADS[1]).outcome == Outcome.already_decided
    assert failing.count("approved") == 1


def test_a_created_field_keeps_the_lock(instance_store: Store, failing: Effects) -> None:
    service, connection, _ = stuck(instance_store, failing, created=["dynLeadX"])
    decision = service.cancel(TEAM, connection.id, ADMIN)
    assert decision.outcome == Outcome.cancelled and "stays locked" in decision.message
    [lock] = instance_store.dynamics_locks(TEAM)
    assert lock.connection_id == connection.id


def test_a_running_retry_cannot_be_withdrawn(instance_store: Store, failing: Effects) -> None:
    service, connection, approval = stuck(instance_store, failing, created=[])
    instance_store.update_approval(TEAM, approval.id, lambda a: a.model_copy(update={
        "effects_state": EffectsState.running, "effects_started_at": service.clock()}))
    assert service.cancel(TEAM, connection.id, ADMIN).outcome == Outcome.already_decided
    assert instance_store.get_approval(TEAM, approval.id).status == ApprovalStatus.approved
    assert len(instance_store.dynamics_locks(TEAM)) == 1


def test_only_the_holding_connection_releases_the_lock(instance_store: Store) -> None:
    instance_store.take_dynamics_lock(DynamicsLock(organization_id="org-a", url="https://a.example",
                                                   team_id=TEAM, connection_id="c-holder"))
    assert not instance_store.release_dynamics_lock(TEAM, "c-other")
    assert not instance_store.release_dynamics_lock("T0OTHER", "c-holder")
    assert len(instance_store.dynamics_locks(TEAM)) == 1
    assert instance_store.release_dynamics_lock(TEAM, "c-holder")
    assert instance_store.dynamics_locks(TEAM) == []


@pytest.fixture
def emulators() -> Iterator[tuple[SlackEmulator, MarketoEmulator]]:
    with SlackEmulator() as slack, MarketoEmulator(client_secret="emulator-secret") as marketo:
        yield slack, marketo


def test_a_retry_skips_the_steps_recorded_as_done(emulators: tuple[SlackEmulator, MarketoEmulator], key_prefix: str,
                                                  encryption_key: str) -> None:
    """The run was started by an attempt that died before recording it: the retry starts no second
    run, asks Marketo for no field, and records the remaining steps."""
    slack, marketo = emulators
    container = Container(Settings(REDIS_URL=REDIS_URL, REDIS_KEY_PREFIX=key_prefix, ENCRYPTION_KEY=encryption_key,
                                   SLACK_BOT_TOKEN=slack.bot_token, SLACK_API_URL=slack.api_url,
                                   MARKETO_BASE_URL=marketo.url, MARKETO_CLIENT_ID=marketo.client_id,
                                   MARKETO_CLIENT_SECRET="emulator-secret"))
    store = container.store
    connection = confirmed(store)
    approval = Approval(team_id=TEAM, connection_id=connection.id, requester=ADMIN, status=ApprovalStatus.approved,
                        decided_by=LEADS[0], expires_at=1_800_000_000,
                        effects_done=[EffectStep.org_locked, EffectStep.fields_created])
    store.save_approval(approval)
    flow.request_approval(store, TEAM, connection.id, approval.id)
    run = start_initial_sync(store, container.queue, flow.approve(store, TEAM, connection.id, approval.id))
    queued = list(Queue(f"{key_prefix}-sync", connection=store.redis).job_ids)

    container.approvals.effects.on_approved(approval)

    assert store.get_connection(TEAM, connection.id).run_id == run.id
    assert list(Queue(f"{key_prefix}-sync", connection=store.redis).job_ids) == queued
    assert marketo.fields_asked() == [] and not marketo.calls()
    assert store.get_approval(TEAM, approval.id).effects_done == list(EffectStep)
    assert [m.text for m in slack.messages(slack.dm_channel(ADMIN))], "the requester is told"
