"""The Bulk Import path keeps the CRM rules of the REST path (companies, owners, one person per human): the
same initial load through either path leaves Marketo in the same state, checked with `sandbox/verify.py`.
Emulators over loopback, real Redis, an RQ worker."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from rq import SimpleWorker

from bot.models import Entity, RunStatus
from bot.sync import entry, runs
from bot.sync.checkpoint import RunState
from sandbox.verify import one_person, verify_sync
from tests.conftest import REDIS_URL
from tests.integration.sync_harness import WRITE_PATHS, SyncHarness

RECORDS = {"lead": 120, "contact": 90, "account": 12}
QUALIFIED = (3, 8)  # leads qualified into contacts before the load
MERGED = (20, 21)  # contact 21 merged into contact 20 before the load
GONE_OWNER = (30, "0badc0de-0000-4000-8000-000000000001")  # lead 30 is owned by a user Dynamics no longer has
BULK_PATH = "/bulk/v1/leads.json"
VOLATILE = {"id", "createdAt", "updatedAt"}


def load(key_prefix: str, path: str, fail_companies: bool = False) -> Iterator[tuple[SyncHarness, Any,
                                                                                   list[tuple[str, str]]]]:
    """An initial load of accounts, owners and people (two leads qualified, two contacts merged, an owner gone)
    through `path`: (harness, run, (lead id, contact id) of each qualified lead). `fail_companies`: the first
    company write fails (607)."""
    knobs, settings = WRITE_PATHS[path]
    harness = SyncHarness(REDIS_URL, f"{key_prefix}{path}:", RECORDS, dynamics={"filter_false_fraction": 0.0},
                          marketo=knobs, settings={**settings, "BULK_IMPORT_PART_BYTES": 8_000}).start()
    entry.install(harness.container.sync)
    try:
        if fail_companies:
            harness.marketo.fail_next(1, 607, path="/rest/v1/companies.json")
        harness.dynamics.merge_records("contact", *MERGED)
        harness.dynamics.update_record("lead", GONE_OWNER[0], ownerid=GONE_OWNER[1])
        pairs = [(harness.dynamics.record_id("lead", i), harness.dynamics.qualify_lead(i)) for i in QUALIFIED]
        run = runs.start_initial_sync(harness.store, harness.container.queue, harness.connection)
        SimpleWorker([harness.container.queue], connection=harness.store.redis).work(burst=True)
        yield harness, harness.store.get_run("T1", run.id), pairs
    finally:
        entry.install(None)
        harness.stop()


def verified(world: SyncHarness, name: str) -> None:
    """Marketo holds Dynamics field by field (`sandbox/verify.py`), but for what verify.py expects and neither
    path writes: the merged-away contact (its person follows the master's) and the owner that is gone."""
    report = verify_sync(world.dynamics, world.marketo, world.connection.plan)
    missing = {"contact": [world.dynamics.record_id("contact", MERGED[1])]}
    unowned = {"lead": [(world.dynamics.record_id("lead", GONE_OWNER[0]), "externalSalesPersonId", GONE_OWNER[1],
                         None)]}
    for check in report.entities:
        assert (check.missing, check.duplicates, check.mismatches) == (
            missing.get(check.entity, []), [], unowned.get(check.entity, [])), f"{name}: {report.describe()}"


def state(marketo: Any) -> dict[str, Any]:
    """What Marketo holds, without the ids and times Marketo assigns."""
    def plain(row: dict) -> tuple:
        return tuple(sorted((k, str(v)) for k, v in row.items() if k not in VOLATILE and v not in (None, "")))
    return {"persons": sorted(map(plain, marketo.leads())), "companies": sorted(map(plain, marketo.companies())),
            "sales persons": sorted(map(plain, marketo.sales_persons()))}


@pytest.fixture
def rest(key_prefix: str) -> Iterator[tuple[SyncHarness, Any, list[tuple[str, str]]]]:
    yield from load(key_prefix, "rest")


@pytest.fixture
def bulk(key_prefix: str) -> Iterator[tuple[SyncHarness, Any, list[tuple[str, str]]]]:
    yield from load(key_prefix, "bulk")


def test_a_bulk_load_ends_with_the_same_marketo_state_as_the_rest_path(rest, bulk) -> None:
    outcomes = {}
    for name, (world, run, pairs) in (("rest", rest), ("bulk", bulk)):
        assert run.status == RunStatus.finished, name
        verified(world, name)
        for lead_id, contact_id in pairs:
            same, line = one_person(world.marketo, lead_id, contact_id)
            assert same, f"{name}: {line}"
        assert list(RunState(world.store, "T1", run.id).ledger) == [], name  # no row failed, no unknown owner
        unowned = world.marketo.lead_by("dynamicsLeadId", world.dynamics.record_id("lead", GONE_OWNER[0]))
        assert unowned is not None and not unowned.get("externalSalesPersonId"), name
        outcomes[name] = state(world.marketo)
    bulk_world, bulk_run = bulk[0], bulk[1]
    assert [c for c in bulk_world.marketo.calls(BULK_PATH) if c.admitted]  # the people did go through imports
    leads = next(p for p in bulk_run.entities if p.entity == Entity.lead)
    assert leads.imported > 0 and leads.parts_done >= 2
    linked = [row for row in bulk_world.marketo.leads() if row.get("externalCompanyId")]
    assert linked and all(row.get("externalSalesPersonId") for row in linked)
    assert outcomes["bulk"] == outcomes["rest"]



def test_people_whose_account_is_not_written_go_through_rest_and_are_linked_when_it_is(key_prefix: str) -> None:
    loaded = load(key_prefix, "bulk", fail_companies=True)
    world, run, _ = next(loaded)
    try:
        assert run.status == RunStatus.paused  # the accounts paused; the people went on without them
        contact_id = world.dynamics.record_id("contact", 7)
        contact = world.marketo.lead_by("dynamicsContactId", contact_id)
        assert contact is not None and not contact.get("externalCompanyId")
        waiting = world.store.links.company_waiters("T1", world.connection.id,
                                                    [world.dynamics.record_id("account", i) for i in range(12)])
        assert f"contact:{contact_id}" in {m for people in waiting.values() for m in people}
        contacts = next(p for p in run.entities if p.entity == Entity.contact)
        assert contacts.imported == 0 and contacts.created > 0  # every contact has an account: none imported

        runs.resume_run(world.store, world.container.queue, "T1", run.id)
        SimpleWorker([world.container.queue], connection=world.store.redis).work(burst=True)
        assert world.store.get_run("T1", run.id).status == RunStatus.finished
        verified(world, "bulk")
        linked = world.marketo.lead_by("dynamicsContactId", contact_id)
        assert linked is not None and linked.get("externalCompanyId")
    finally:
        loaded.close()
