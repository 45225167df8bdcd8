"""The metadata cache (real Redis) and the duplicate-email report, against the emulator."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator

import pytest

from bot.config import Settings
from bot.dynamics.auth import sign_in
from bot.dynamics.client import DataverseClient
from bot.dynamics.duplicates import find_duplicate_emails
from bot.dynamics.egress import HostAllowlist
from bot.dynamics.metadata import MetadataCache
from bot.models import Connection, Credentials, Entity, EntityPlan, FieldPlan
from bot.steps.confirm import duplicate_report
from bot.store import Store
from sandbox.dynamics import DynamicsEmulator
from tests.unit.test_views_kit import text_of, view_dict


@pytest.fixture
def emulator(start_dynamics: Callable[..., DynamicsEmulator]) -> DynamicsEmulator:
    return start_dynamics(records={"lead": 900, "contact": 600}, duplicate_fraction=0.15,
                          sync_filter={"lead": "new_synctomkto"}, extra_attributes={"contact": 30})


def signed_in(emulator: DynamicsEmulator) -> DataverseClient:
    settings = Settings(ENTRA_AUTHORITY_HOST=emulator.authority_host, CA_BUNDLE=emulator.ca_path)
    provider = sign_in(Credentials(username="sync@contoso.com", password="Passw0rd!", url=emulator.url), settings)
    return DataverseClient(emulator.url, provider, ca_bundle=emulator.ca_path, page_size=250,
                           host_allowlist=HostAllowlist(["localhost"]))


@pytest.fixture
def client(emulator: DynamicsEmulator) -> Iterator[DataverseClient]:
    with signed_in(emulator) as dv:
        yield dv


def test_metadata_is_fetched_once_then_served_from_redis(store: Store, client: DataverseClient) -> None:
    cache = MetadataCache(store, ttl=120)
    assert cache.cached("T1", "c1", Entity.contact) is None
    fresh = cache.get("T1", "c1", client, Entity.contact)
    calls = client.calls
    assert calls > 0 and len(fresh.attributes) > 30
    assert cache.get("T1", "c1", client, Entity.contact) == fresh and client.calls == calls
    assert cache.cached("T1", "c1", "contact") == fresh
    assert cache.cached("T1", "c2", Entity.contact) is None and cache.cached("T2", "c1", Entity.contact) is None
    key = store.keys.metadata("T1", "c1", "contact")
    assert 0 < store.redis.ttl(key) <= 120
    cache.get("T1", "c1", client, Entity.contact, refresh=True)
    assert client.calls > calls


def test_custom_tables_are_read_once_then_served_from_redis(store: Store, client: DataverseClient) -> None:
    """Step 2 lists the custom tables on every open: one metadata read per table, so they are cached."""
    cache = MetadataCache(store, ttl=120)
    fresh = cache.custom_tables("T1", "c1", client)
    calls = client.calls
    assert {t.logical_name for t in fresh} >= {"new_project", "new_projectnote"} and calls > len(fresh)
    assert cache.custom_tables("T1", "c1", client) == fresh and client.calls == calls
    assert cache.custom_tables("T1", "c2", client) == fresh and client.calls > calls  # per connection
    calls = client.calls
    assert cache.custom_tables("T1", "c1", client, refresh=True) == fresh and client.calls > calls


def _expected(emulator: DynamicsEmulator, apply_filter: bool) -> Counter[str]:
    counts: Counter[str] = Counter()
    for entity in ("lead", "contact"):
        for record in emulator.expected_records(entity, ["emailaddress1"], apply_filter=apply_filter):
            counts[record["emailaddress1"].strip().lower()] += 1
    return Counter({email: n for email, n in counts.items() if n > 1})


def test_duplicate_report_matches_the_data(emulator: DynamicsEmulator, client: DataverseClient) -> None:
    report = find_duplicate_emails(client, top=3)
    shared = _expected(emulator, apply_filter=False)
    assert report.total_duplicate_emails == len(shared) > 10
    assert report.records_involved == sum(shared.values())
    assert len(report.examples) == 3
    assert [n for _, n in report.examples] == sorted(shared.values(), reverse=True)[:3]
    assert all(shared[email] == n for email, n in report.examples)


def test_duplicate_report_can_skip_records_the_filter_excludes(
    emulator: DynamicsEmulator, client: DataverseClient
) -> None:
    report = find_duplicate_emails(client, filter_attributes={Entity.lead: "new_synctomkto"})
    shared = _expected(emulator, apply_filter=True)
    assert report.total_duplicate_emails == len(shared)
    assert report.records_involved == sum(shared.values())


def test_step3_shows_every_record_sharing_an_address_not_only_the_examples(
    emulator: DynamicsEmulator, store: Store
) -> None:
    plan = FieldPlan(entities=[EntityPlan(entity=Entity.lead, mappings=[], id_field="dynamicsLeadId"),
                               EntityPlan(entity=Entity.contact, mappings=[], id_field="dynamicsContactId")])
    connection = Connection(team_id="T1", requester="U1", plan=plan)
    store.save_connection(connection)
    view = duplicate_report(store, lambda team_id, connection_id: signed_in(emulator), "T1", connection.id)

    shared = _expected(emulator, apply_filter=False)
    saved = store.get_connection("T1", connection.id)
    assert (saved.duplicate_count, saved.duplicate_records) == (len(shared), sum(shared.values()))
    assert sum(n for _, n in saved.duplicate_examples) < sum(shared.values()), "more records than the examples"
    assert (f"{len(shared):,} addresses are shared by more than one Dynamics record "
            f"({sum(shared.values()):,} records)") in text_of(view_dict(view))
