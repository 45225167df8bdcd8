"""One Marketo person per human, end to end over loopback with real Redis and RQ: qualified leads, merges made
in Dynamics, and account deletes (`bot.sync.people`)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from bot.audit import PEOPLE_MERGED, AuditLog
from bot.models import Entity
from bot.sync import incremental
from tests.integration.sync_harness import SyncHarness, synced_world

RECORDS = {"lead": 40, "contact": 20}


@pytest.fixture
def world(key_prefix: str) -> Iterator[SyncHarness]:
    yield from synced_world(key_prefix, RECORDS)


def cycle(world: SyncHarness, *entities: Entity) -> None:
    for entity in entities:
        assert incremental.run_incremental(world.container.sync, "T1", world.connection.id, entity) == "done"


def persons(world: SyncHarness, field: str, value: str) -> list[dict[str, Any]]:
    return [row for row in world.marketo.leads() if row.get(field) == value]


def one_person(world: SyncHarness, lead_id: str, contact_id: str) -> dict[str, Any]:
    """The one Marketo person holding both ids (and no other holding either)."""
    by_lead, by_contact = persons(world, "dynamicsLeadId", lead_id), persons(world, "dynamicsContactId", contact_id)
    assert len(by_lead) == 1 and len(by_contact) == 1 and by_lead[0]["id"] == by_contact[0]["id"]
    return by_lead[0]


def merges_audited(world: SyncHarness) -> list[str]:
    return [e.detail for e in AuditLog(world.store).recent("T1", 50) if e.action == PEOPLE_MERGED]


@pytest.mark.parametrize("order", [(Entity.lead, Entity.contact), (Entity.contact, Entity.lead)],
                         ids=["lead-first", "contact-first"])
def test_a_qualified_lead_stays_one_person_and_its_contact_wins(world: SyncHarness, order: tuple[Entity, ...]) -> None:
    lead_id = world.dynamics.record_id("lead", 3)
    contact_id = world.dynamics.qualify_lead(3)
    contact_index = world.dynamics.index_of("contact", contact_id)
    world.dynamics.update_record("contact", contact_index, firstname="Contacta")
    people = world.marketo.lead_count()

    cycle(world, *order)  # lead and contact arrive in the same cycle, in either order
    assert one_person(world, lead_id, contact_id)["firstName"] == "Contacta"
    assert world.marketo.lead_count() == people  # no new person

    world.dynamics.update_record("lead", 3, firstname="LateLead")
    cycle(world, Entity.lead)
    assert one_person(world, lead_id, contact_id)["firstName"] == "Contacta"  # contact fields win from now on
    world.dynamics.update_record("contact", contact_index, firstname="Contactb")
    cycle(world, Entity.contact)
    assert one_person(world, lead_id, contact_id)["firstName"] == "Contactb"
    assert merges_audited(world) == []


def test_duplicates_from_before_are_merged_with_the_contacts_person_winning(world: SyncHarness) -> None:
    lead_id = world.dynamics.record_id("lead", 5)
    lead_person = persons(world, "dynamicsLeadId", lead_id)[0]
    contact_id = world.dynamics.qualify_lead(5)
    # The contact's person made before this rule existed: a second person for the same human.
    [made] = world.container.marketo().sync_leads([{"dynamicsContactId": contact_id, "email": "old@example.com"}],
                                                  "dynamicsContactId")
    cycle(world, Entity.contact)

    person = one_person(world, lead_id, contact_id)
    assert person["id"] == made.id != lead_person["id"]  # the contact's person won
    assert world.marketo.lead_by("id", lead_person["id"]) is None
    [detail] = merges_audited(world)
    assert f"{lead_person['id']} merged into {made.id}" in detail and contact_id in detail


@pytest.mark.parametrize("entity", [Entity.lead, Entity.contact])
def test_a_merge_in_dynamics_merges_the_persons_in_marketo(world: SyncHarness, entity: Entity) -> None:
    key = entity.marketo_id_field
    master, loser = world.dynamics.record_id(entity.value, 1), world.dynamics.record_id(entity.value, 2)
    master_person, loser_person = (persons(world, key, i)[0]["id"] for i in (master, loser))
    people = world.marketo.lead_count()
    world.dynamics.merge_records(entity.value, 1, 2)
    cycle(world, entity)

    assert persons(world, key, loser) == []  # not written again: merged away
    assert persons(world, key, master)[0]["id"] == master_person
    assert world.marketo.lead_by("id", loser_person) is None and world.marketo.lead_count() == people - 1
    [detail] = merges_audited(world)
    assert f"{loser_person} merged into {master_person}" in detail and "in Dynamics" in detail


def test_contacts_read_before_leads_in_the_initial_sync_give_one_person(key_prefix: str) -> None:
    contact_ids: list[str] = []

    def qualify_then_read_contacts_first(harness: SyncHarness) -> None:
        contact_ids.extend(harness.dynamics.qualify_lead(i) for i in (4, 6))
        harness.dynamics.update_record("contact", harness.dynamics.index_of("contact", contact_ids[0]),
                                       firstname="Contacta")
        harness.connection.plan.entities.sort(key=lambda p: p.entity != Entity.contact)  # contacts' job runs first
        harness.store.save_connection(harness.connection)

    worlds = synced_world(key_prefix, RECORDS, prepare=qualify_then_read_contacts_first)
    world = next(worlds)
    try:
        lead_ids = [world.dynamics.record_id("lead", i) for i in (4, 6)]
        for lead_id, contact_id in zip(lead_ids, contact_ids, strict=True):
            one_person(world, lead_id, contact_id)
        assert one_person(world, lead_ids[0], contact_ids[0])["firstName"] == "Contacta"
        assert world.marketo.lead_count() == RECORDS["lead"] + RECORDS["contact"]  # 2 new contacts, 2 fewer persons
    finally:
        next(worlds, None)


def test_an_account_delete_flags_the_people_who_worked_there(key_prefix: str) -> None:
    worlds = synced_world(key_prefix, {"lead": 10, "contact": 12, "account": 3})
    world = next(worlds)
    try:
        assert "dynamicsAccountDeleted" in {f.name for f in world.connection.plan.fields_to_create}
        deleted = world.dynamics.record_id("account", 1)
        with world.container.dataverse("T1", world.connection.id) as client:
            contacts = {r["contactid"]: r["_parentcustomerid_value"]
                        for page in client.iter_pages(Entity.contact, ["_parentcustomerid_value"], track_changes=False)
                        for r in page.records}
        world.dynamics.delete_record("account", 1)
        cycle(world, Entity.account)

        flagged = {cid for cid in contacts if world.marketo.lead_by("dynamicsContactId", cid).get(
            "dynamicsAccountDeleted") is True}
        assert flagged == {cid for cid, account in contacts.items() if account == deleted} != set()
    finally:
        next(worlds, None)
