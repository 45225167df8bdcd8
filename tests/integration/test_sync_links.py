"""People linked to their companies and records to their owners, end to end: Dynamics emulator → RQ worker →
Marketo emulator, real Redis."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from rq import SimpleWorker

from bot.models import Entity, RunStatus
from bot.sync import entry, incremental, runs
from tests.conftest import REDIS_URL
from tests.integration.sync_harness import SyncHarness

RECORDS = {"lead": 120, "contact": 90, "account": 12}


@pytest.fixture
def world(key_prefix: str) -> Iterator[SyncHarness]:
    harness = SyncHarness(REDIS_URL, key_prefix, RECORDS, dynamics={"filter_false_fraction": 0.0}).start()
    entry.install(harness.container.sync)
    yield harness
    incremental.unschedule(harness.store, "T1", harness.connection.id)
    entry.install(None)
    harness.stop()


def work(world: SyncHarness) -> None:
    SimpleWorker([world.container.queue], connection=world.store.redis).work(burst=True)


def sync(world: SyncHarness) -> None:
    run = runs.start_initial_sync(world.store, world.container.queue, world.connection)
    work(world)
    assert world.store.get_run("T1", run.id).status == RunStatus.finished


def parent(world: SyncHarness, entity: str, index: int) -> str | None:
    read = {"contact": "_parentcustomerid_value", "lead": "_parentaccountid_value"}[entity]
    return column(world, entity, read)[index]


def owner(world: SyncHarness, entity: str, index: int) -> str:
    return column(world, entity, "_ownerid_value")[index]


def column(world: SyncHarness, entity: str, read: str) -> list:
    """One column of every record of `entity`, in index order, as Dynamics holds it now."""
    return [record.get(read) for record in world.dynamics.expected_records(entity, [read], apply_filter=False)]


def person(world: SyncHarness, entity: Entity, index: int) -> dict:
    row = world.marketo.lead_by(entity.marketo_id_field, world.dynamics.record_id(entity.value, index))
    assert row is not None
    return row


def test_contacts_and_leads_link_to_their_accounts_company(world: SyncHarness) -> None:
    sync(world)
    companies = {c["externalCompanyId"]: c for c in world.marketo.companies()}
    assert len(companies) == RECORDS["account"]
    for index in range(RECORDS["contact"]):
        contact = person(world, Entity.contact, index)
        account = parent(world, "contact", index)
        assert contact["externalCompanyId"] == account
        assert contact["company"] == companies[account]["company"]  # the company's fields show on the person
    unlinked = 0
    for index in range(RECORDS["lead"]):
        lead, account = person(world, Entity.lead, index), parent(world, "lead", index)
        assert lead.get("externalCompanyId") == account
        unlinked += account is None
    assert 0 < unlinked < RECORDS["lead"]  # a lead without a parent account keeps its own company name
    # Accounts were written first: no person had to wait for its company.
    assert world.store.links.company_waiters("T1", world.connection.id, list(companies)) == {}


def test_people_written_before_their_account_are_linked_when_it_is(world: SyncHarness) -> None:
    world.marketo.fail_next(1, 607, path="/rest/v1/companies.json")  # accounts pause; people go on
    queue = world.container.queue
    run = runs.start_initial_sync(world.store, queue, world.connection)
    work(world)
    assert world.store.get_run("T1", run.id).status == RunStatus.paused
    contact = person(world, Entity.contact, 7)
    account = parent(world, "contact", 7)
    assert "externalCompanyId" not in {k for k, v in contact.items() if v}  # no company to link to yet
    assert world.store.links.company_waiters("T1", world.connection.id, [account])[account]

    runs.resume_run(world.store, queue, "T1", run.id)
    work(world)
    assert world.store.get_run("T1", run.id).status == RunStatus.finished
    for index in range(RECORDS["contact"]):
        assert person(world, Entity.contact, index)["externalCompanyId"] == parent(world, "contact", index)
    accounts = [c["externalCompanyId"] for c in world.marketo.companies()]
    assert world.store.links.company_waiters("T1", world.connection.id, accounts) == {}


def test_owners_become_sales_persons_carried_by_people_and_companies(world: SyncHarness) -> None:
    sync(world)
    persons = {p["externalSalesPersonId"]: p for p in world.marketo.sales_persons()}
    assert len(persons) == 3  # the emulator's three owners, each upserted once
    olivia = next(p for p in persons.values() if p["email"].startswith("olivia@"))
    assert (olivia["firstName"], olivia["lastName"]) == ("Olivia", "Owner")
    upserts = world.marketo.calls("/rest/v1/salespersons.json")
    assert 1 <= len(upserts) <= 3 and all(c.batch_size <= 300 for c in upserts)
    for entity in (Entity.lead, Entity.contact):
        for index in range(0, RECORDS[entity.value], 7):
            assert person(world, entity, index)["externalSalesPersonId"] == owner(world, entity.value, index)
    for company in world.marketo.companies():
        index = next(i for i in range(RECORDS["account"])
                     if world.dynamics.record_id("account", i) == company["externalCompanyId"])
        assert company["externalSalesPersonId"] == owner(world, "account", index)


def test_an_owner_change_moves_on_the_next_cycle_and_a_team_owner_is_skipped(world: SyncHarness) -> None:
    sync(world)
    users = [p["externalSalesPersonId"] for p in world.marketo.sales_persons()]
    new_owner = next(u for u in users if u != owner(world, "contact", 3))
    world.dynamics.update_record("contact", 3, ownerid=new_owner)
    previous = owner(world, "contact", 4)
    world.dynamics.update_record("contact", 4, ownerid=world.dynamics.team_id, firstname="Teamed")

    assert incremental.run_incremental(world.container.sync, "T1", world.connection.id, Entity.contact) == "done"
    assert person(world, Entity.contact, 3)["externalSalesPersonId"] == new_owner
    teamed = person(world, Entity.contact, 4)
    assert teamed["firstName"] == "Teamed"  # written, without a team as its sales person
    assert teamed["externalSalesPersonId"] == previous
    assert world.dynamics.team_id not in {p["externalSalesPersonId"] for p in world.marketo.sales_persons()}
