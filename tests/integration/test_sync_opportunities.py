"""Opportunities and their contact roles, one way, against the emulators over loopback and real Redis."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bot.models import Entity
from bot.sync import incremental
from tests.integration.sync_harness import SyncHarness, synced_world

RECORDS = {"account": 10, "contact": 40, "opportunity": 30}
CONNECTIONS = 2 * RECORDS["opportunity"]  # two contact roles per opportunity (the emulator's rule)


@pytest.fixture
def world(key_prefix: str) -> Iterator[SyncHarness]:
    # the emulator holds the contact roles too, and lets the `new_synctomkto` filter leave some records out
    yield from synced_world(key_prefix, RECORDS, records={**RECORDS, "connection": CONNECTIONS},
                            filter_false_fraction=0.2)


def _passing(world: SyncHarness, entity: str) -> set[str]:
    return {r[f"{entity}id"] for r in world.dynamics.expected_records(entity, [])}


def test_selected_opportunities_sync_with_their_links_and_filtered_ones_are_skipped(world: SyncHarness) -> None:
    synced = {row["externalOpportunityId"]: row for row in world.marketo.opportunities()}
    everything = {world.dynamics.record_id("opportunity", i) for i in range(RECORDS["opportunity"])}
    passing = _passing(world, "opportunity")
    assert 0 < len(passing) < len(everything)  # the `new_synctomkto` filter leaves some out
    assert set(synced) == passing
    plan = world.connection.plan.for_entity(Entity.opportunity)
    select = list(dict.fromkeys([*plan.select, "_parentaccountid_value", "_ownerid_value"]))
    for record in world.dynamics.expected_records("opportunity", select, annotate=True):
        row = synced[record["opportunityid"]]
        assert row["name"] == record["name"]
        assert row["amount"] == record["estimatedvalue"]
        assert row["probability"] == record["closeprobability"]
        assert row["externalCompanyId"] == record["_parentaccountid_value"]  # the GUID, not the account's name
        assert row["externalSalesPersonId"] == record["_ownerid_value"]


def test_contact_roles_link_the_opportunity_to_the_contacts_persons(world: SyncHarness) -> None:
    persons = {row["dynamicsContactId"]: row["id"] for row in world.marketo.leads() if row.get("dynamicsContactId")}
    opportunities = _passing(world, "opportunity")
    connections = world.dynamics.expected_records(
        "connection", ["_record1id_value", "_record2id_value", "_record2roleid_value"], annotate=True)
    primary = {r["opportunityid"]: r["_parentcontactid_value"]
               for r in world.dynamics.expected_records("opportunity", ["_parentcontactid_value"])}
    expected = {
        (c["_record1id_value"], persons[c["_record2id_value"]], c["_record2roleid_value@OData.Community.Display.V1"
                                                                  ".FormattedValue"]):
            primary[c["_record1id_value"]] == c["_record2id_value"]
        for c in connections if c["_record1id_value"] in opportunities and c["_record2id_value"] in persons
    }
    roles = {(r["externalOpportunityId"], r["leadId"], r["role"]): r["isPrimary"]
             for r in world.marketo.opportunity_roles()}
    assert expected and roles == expected
    assert any(roles.values()) and not all(roles.values())  # the primary contact's role, and others
    assert len(expected) < CONNECTIONS  # roles of filtered-out opportunities or contacts are not written


def test_a_changed_opportunity_is_updated_on_the_next_cycle(world: SyncHarness) -> None:
    index = next(i for i in range(RECORDS["opportunity"])
                 if world.dynamics.record_id("opportunity", i) in _passing(world, "opportunity"))
    opportunity_id = world.dynamics.record_id("opportunity", index)
    world.dynamics.update_record("opportunity", index, name="Chairs, renegotiated", estimatedvalue=1604.47)

    assert incremental.run_incremental(world.container.sync, "T1", world.connection.id, Entity.opportunity) == "done"
    row = next(r for r in world.marketo.opportunities() if r["externalOpportunityId"] == opportunity_id)
    assert (row["name"], row["amount"]) == ("Chairs, renegotiated", 1604.47)
    assert len([r for r in world.marketo.opportunities() if r["externalOpportunityId"] == opportunity_id]) == 1
    assert world.store.sync_errors.count("T1", world.connection.id, [Entity.opportunity.value]) == 0
