"""Opportunities and their contact roles, one way, against the emulators over loopback and real Redis."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bot.models import Entity
from bot.sync import incremental
from bot.sync.opportunities import PRIMARY_CONTACT
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


class PrimaryContactCycles:
    """A passing opportunity whose two contact roles have persons; cycles that change its primary contact."""

    def __init__(self, world: SyncHarness) -> None:
        self.world = world
        self.persons = {row["dynamicsContactId"]: row["id"] for row in world.marketo.leads()
                        if row.get("dynamicsContactId")}
        contacts: dict[str, list[str]] = {}
        for row in world.dynamics.expected_records("connection", ["_record1id_value", "_record2id_value"]):
            contacts.setdefault(row["_record1id_value"], []).append(row["_record2id_value"])
        self.index, self.opportunity = next(
            (i, o) for i in range(RECORDS["opportunity"])
            if (o := world.dynamics.record_id("opportunity", i)) in _passing(world, "opportunity")
            and len(set(contacts[o]) & set(self.persons)) == 2)
        self.contacts = contacts[self.opportunity]

    def cycle(self, primary: str) -> int:
        """Dataverse requests of a cycle writing the opportunity with `primary` as its primary contact (its
        roles' isPrimary checked)."""
        world = self.world
        world.dynamics.update_record("opportunity", self.index, parentcontactid=primary)
        before = world.dynamics.requests
        assert incremental.run_incremental(world.container.sync, "T1", world.connection.id, Entity.opportunity) == "done"
        spent = world.dynamics.requests - before
        roles = {r["leadId"]: r["isPrimary"] for r in world.marketo.opportunity_roles()
                 if r["externalOpportunityId"] == self.opportunity}
        assert roles == {self.persons[contact]: contact == primary for contact in self.contacts}
        return spent


def _read_primary_contact(world: SyncHarness, lookup: str | None) -> None:
    """The connection's plan, reading opportunities' primary contact through `lookup` (None: as plans made
    before it was read)."""
    connection = world.store.get_connection("T1", world.connection.id)
    plan = connection.plan.model_copy(update={"entities": [
        p.model_copy(update={"primary_contact_lookup": lookup}) if p.entity == Entity.opportunity else p
        for p in connection.plan.entities]})
    world.connection = connection.model_copy(update={"plan": plan})
    world.store.save_connection(world.connection)


def test_a_cycle_takes_the_primary_contact_from_the_opportunities_read_not_from_another_read(
    world: SyncHarness,
) -> None:
    """The plan reads `parentcontactid` with the opportunities: a changed opportunity's roles cost one Dataverse
    request less than with a plan made before it was read (whose writer reads it again), isPrimary right both ways."""
    assert world.connection.plan.for_entity(Entity.opportunity).primary_contact_lookup == PRIMARY_CONTACT
    cycles = PrimaryContactCycles(world)
    first, second = cycles.contacts
    cycles.cycle(second)  # the first cycle also starts following the roles' own changes: not counted
    read_with = cycles.cycle(first)
    _read_primary_contact(world, None)
    assert cycles.cycle(second) == read_with + 1


def test_a_delta_link_made_before_the_primary_contact_was_read_is_followed_not_replaced(key_prefix: str) -> None:
    """A plan made again (a change of fields) reads the primary contact; the opportunities' delta link, made
    without it, still serves (no full read): the writer reads it again for those cycles."""
    for world in synced_world(key_prefix, RECORDS, records={**RECORDS, "connection": CONNECTIONS},
                              prepare=lambda harness: _read_primary_contact(harness, None)):
        _read_primary_contact(world, PRIMARY_CONTACT)
        cycles = PrimaryContactCycles(world)
        for primary in reversed(cycles.contacts):
            cycles.cycle(primary)
