"""The Dynamics org lock: one per Marketo instance (every Slack team sharing it), compared by the
Dataverse OrganizationId that WhoAmI returns, over real Redis and the Dataverse emulator."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis

from bot import flow
from bot.config import Settings
from bot.container import Container
from bot.crypto import SecretBox
from bot.dynamics.preflight import Preflight, run_preflight
from bot.errors import FlowError
from bot.models import CheckResult, Connection, Credentials, FlowState
from bot.store import Store
from sandbox.dynamics import DynamicsEmulator
from tests.conftest import REDIS_URL
from tests.support.connections import synced

ADMIN = "UADMIN"
INSTANCE = "123-ABC-456"
PASSING = [CheckResult(name="credentials valid", ok=True)]


@pytest.fixture
def marketo_store(redis_client: redis.Redis, key_prefix: str, encryption_key: str) -> Store:
    return Store(redis_client, SecretBox(encryption_key), prefix=key_prefix, marketo_instance=INSTANCE)


@pytest.fixture
def org(start_dynamics: Callable[..., DynamicsEmulator]) -> DynamicsEmulator:
    return start_dynamics()


@pytest.fixture
def other_org(start_dynamics: Callable[..., DynamicsEmulator]) -> DynamicsEmulator:
    return start_dynamics(seed=1)


def loopback(url: str) -> str:
    """The same emulator reached through 127.0.0.1 instead of localhost."""
    return url.replace("://localhost:", "://127.0.0.1:")


def preflight(em: DynamicsEmulator, url: str) -> Preflight:
    settings = Settings(ENTRA_AUTHORITY_HOST=em.authority_host, CA_BUNDLE=em.ca_path,
                        DYNAMICS_HOST_ALLOWLIST="localhost,127.0.0.1")
    result = run_preflight(Credentials(username="sync@contoso.com", password="Passw0rd!", url=url), settings)
    assert result.ok, [c for c in result.checks if not c.ok]
    return result


def checked(store: Store, team_id: str, url: str, organization_id: str | None) -> Connection:
    """Step 1 passed for `url` (a new draft of `team_id`): the lock is checked here."""
    draft = flow.start_connection(store, team_id, ADMIN)
    return flow.record_credentials(store, team_id, draft.id, ADMIN, url=url, username="sync@contoso.com",
                                   sync_user_id="guid", organization_id=organization_id, checklist=PASSING)


def approved(store: Store, connection: Connection) -> Connection:
    """What approval does to the lock, and the connection then counts as connected."""
    return synced(store, connection, ADMIN, lock=True)


def test_whoami_gives_the_same_org_under_both_urls_and_another_for_another_org(
    org: DynamicsEmulator, other_org: DynamicsEmulator
) -> None:
    assert preflight(org, org.url).organization_id == org.organization_id
    assert preflight(org, loopback(org.url)).organization_id == org.organization_id
    assert preflight(other_org, other_org.url).organization_id == other_org.organization_id != org.organization_id


def test_two_teams_of_one_marketo_instance_connect_one_org(
    marketo_store: Store, org: DynamicsEmulator, other_org: DynamicsEmulator
) -> None:
    first = approved(marketo_store, checked(marketo_store, "T1", org.url, preflight(org, org.url).organization_id))
    assert first.organization_id == org.organization_id

    draft = flow.start_connection(marketo_store, "T2", ADMIN)
    assert draft.dynamics_url == org.url, "the second team's draft starts at the locked org"
    with pytest.raises(FlowError) as refused:
        checked(marketo_store, "T2", other_org.url, preflight(other_org, other_org.url).organization_id)
    assert refused.value.user_message == flow.locked_message(org.url)

    same = checked(marketo_store, "T2", loopback(org.url), preflight(org, loopback(org.url)).organization_id)
    assert same.state == FlowState.fields and same.dynamics_url == loopback(org.url)
    holder = flow.lock_dynamics_org(marketo_store, same, loopback(org.url))
    assert (holder.url, holder.team_id, holder.connection_id) == (org.url, "T1", first.id), "the locked URL is kept"


def test_an_approval_for_another_org_is_refused_once_the_instance_is_locked(marketo_store: Store) -> None:
    waiting = checked(marketo_store, "T2", "https://other.crm.dynamics.com", "org-b")
    approved(marketo_store, checked(marketo_store, "T1", "https://org.crm.dynamics.com", "org-a"))
    with pytest.raises(FlowError, match="already connected to https://org.crm.dynamics.com"):
        flow.lock_dynamics_org(marketo_store, waiting, "https://other.crm.dynamics.com")


def test_simultaneous_approvals_of_two_orgs_lock_one(marketo_store: Store) -> None:
    connections = [checked(marketo_store, f"T{i}", f"https://org{i % 2}.crm.dynamics.com", f"org-{i % 2}")
                   for i in range(10)]
    barrier = threading.Barrier(len(connections))

    def approve(connection: Connection) -> str | None:
        barrier.wait()
        try:
            return flow.lock_dynamics_org(marketo_store, connection, connection.dynamics_url or "").organization_id
        except FlowError:
            return None

    with ThreadPoolExecutor(len(connections)) as pool:
        winners = list(pool.map(approve, connections))
    locked = {w for w in winners if w is not None}
    assert len(locked) == 1 and winners.count(None) == 5


def test_other_marketo_instances_have_their_own_lock(marketo_store: Store, redis_client: redis.Redis,
                                                     key_prefix: str, encryption_key: str) -> None:
    approved(marketo_store, checked(marketo_store, "T1", "https://org.crm.dynamics.com", "org-a"))
    elsewhere = Store(redis_client, SecretBox(encryption_key), prefix=key_prefix, marketo_instance="789-XYZ-012")
    assert checked(elsewhere, "T2", "https://other.crm.dynamics.com", "org-b").state == FlowState.fields


def test_two_spellings_of_one_marketo_base_url_share_one_lock(key_prefix: str, encryption_key: str) -> None:
    def store_for(base_url: str) -> Store:
        return Container(Settings(REDIS_URL=REDIS_URL, REDIS_KEY_PREFIX=key_prefix, ENCRYPTION_KEY=encryption_key,
                                 MARKETO_BASE_URL=base_url)).store

    one, two = store_for("https://123-ABC-456.mktorest.com"), store_for("https://123-abc-456.MKTOREST.com/")
    approved(one, checked(one, "T1", "https://org.crm.dynamics.com", "org-a"))
    with pytest.raises(FlowError, match="already connected to https://org.crm.dynamics.com"):
        checked(two, "T2", "https://other.crm.dynamics.com", "org-b")


def test_a_team_url_lock_from_before_org_ids_is_still_honoured(marketo_store: Store) -> None:
    marketo_store.redis.set(marketo_store.keys.locked_url("T1"), "https://org.crm.dynamics.com")
    with pytest.raises(FlowError, match="already connected to https://org.crm.dynamics.com"):
        checked(marketo_store, "T1", "https://other.crm.dynamics.com", "org-b")
    connection = checked(marketo_store, "T1", "https://ORG.crm.dynamics.com/", "org-a")

    holder = flow.lock_dynamics_org(marketo_store, connection, connection.dynamics_url or "")
    assert (holder.organization_id, holder.url) == ("org-a", "https://org.crm.dynamics.com")
    with pytest.raises(FlowError, match="already connected to https://org.crm.dynamics.com"):
        checked(marketo_store, "T2", "https://other.crm.dynamics.com", "org-b")
