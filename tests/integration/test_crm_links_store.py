"""The Redis side of people's company links (`bot.store.links`), against real Redis; and a person whose
account another worker writes while the person is written."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bot.marketo.client import MarketoClient
from bot.models import Entity, EntityPlan, MarketoField
from bot.store import Store
from bot.sync.links import LinkedWrites
from sandbox.marketo import MarketoEmulator


def test_a_person_waits_for_the_account_it_points_to_now(store: Store) -> None:
    links = store.links
    links.wait_for_companies("T1", "c1", {"A": ["contact:1", "contact:2"]}, [])
    assert links.company_waiters("T1", "c1", ["A", "B"]) == {"A": ["contact:1", "contact:2"]}

    links.wait_for_companies("T1", "c1", {"B": ["contact:1"]}, ["contact:2"])  # 1 moved to B; 2 got linked
    assert links.company_waiters("T1", "c1", ["A"]) == {}
    assert links.company_waiters("T1", "c1", ["A", "B"]) == {"B": ["contact:1"]}
    assert not store.redis.exists(store.keys.company_waiters("T1", "c1", "A"))  # the stale entries went

    links.linked("T1", "c1", {"B": ["contact:1"]})
    assert links.company_waiters("T1", "c1", ["B"]) == {}
    assert not store.redis.exists(store.keys.company_awaited("T1", "c1"))


def test_written_companies_and_known_sales_persons(store: Store) -> None:
    links = store.links
    links.mark_companies_written("T1", "c1", ["A", "B"])
    assert links.companies_written("T1", "c1", ["A", "C", "A"]) == {"A"}
    assert links.companies_written("T1", "c2", ["A"]) == set()  # per connection
    links.remember_sales_persons("T1", "c1", ["u1"])
    assert links.sales_persons_known("T1", "c1", ["u1", "u2"]) == {"u1"}
    assert 0 < store.redis.ttl(store.keys.sales_persons("T1", "c1")) <= 24 * 3600  # names refresh daily


@pytest.fixture
def marketo() -> Iterator[tuple[MarketoEmulator, MarketoClient]]:
    emulator = MarketoEmulator(client_id="cid", client_secret="csecret").start()
    client = MarketoClient(emulator.url, "cid", "csecret")
    client.create_lead_fields([MarketoField(name="dynamicsContactId", display_name="Dynamics Contact Id",
                                            data_type="string")])
    yield emulator, client
    client.close()
    emulator.stop()


class AccountWrittenMeanwhile:
    """The Marketo client, and another worker that writes the account while this one writes its contact."""

    def __init__(self, client: MarketoClient, store: Store) -> None:
        self.client, self.store = client, store

    def sync_leads(self, records: list[dict], lookup_field: str, action: str = "createOrUpdate") -> list:
        results = self.client.sync_leads(records, lookup_field, action=action)
        if action != "updateOnly":
            self.client.sync_companies([{"externalCompanyId": "A", "company": "Acme"}])
            self.store.links.mark_companies_written("T1", "c1", ["A"])
            assert self.store.links.company_waiters("T1", "c1", ["A"]) == {}  # it looked before the contact waited
        return results


def test_a_contact_whose_account_is_written_meanwhile_is_linked_at_once(
        store: Store, marketo: tuple[MarketoEmulator, MarketoClient]) -> None:
    emulator, client = marketo
    plan = EntityPlan(entity=Entity.contact, mappings=[], id_field="dynamicsContactId",
                      company_lookup="_parentcustomerid_value")
    writes = LinkedWrites(AccountWrittenMeanwhile(client, store), plan, store.links, "T1", "c1", lambda ids: [])
    results = writes.sync_leads([{"dynamicsContactId": "k1", "email": "k@x.com", "company": "Own Co",
                                  "externalCompanyId": "A"}], "dynamicsContactId")
    assert [r.status for r in results] == ["created"]
    contact = emulator.lead_by("dynamicsContactId", "k1")
    assert contact is not None and contact["externalCompanyId"] == "A" and contact["company"] == "Acme"
    assert store.links.company_waiters("T1", "c1", ["A"]) == {}
