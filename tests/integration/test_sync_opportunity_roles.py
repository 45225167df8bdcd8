"""Contact roles changed alone (the opportunity unchanged) reach Marketo on the next incremental cycle:
the emulators over loopback, real Redis, the cycle run by an RQ worker."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
from rq import SimpleWorker

from bot.audit import AuditLog
from bot.models import Entity, RunStatus
from bot.steps.brake import decide_hold
from bot.sync import entry, incremental, runs
from bot.sync.opportunities import FORMATTED, FROM, ROLE, TO
from bot.views.brake import hold_value
from tests.conftest import REDIS_URL
from tests.integration.sync_harness import SyncHarness

LEAD = "U0LEAD01"
RECORDS = {"account": 10, "contact": 40, "opportunity": 30}
CONNECTIONS = 2 * RECORDS["opportunity"]


def _world(key_prefix: str, untracked: set[str], settings: dict[str, Any] | None = None) -> Iterator[SyncHarness]:
    harness = SyncHarness(REDIS_URL, key_prefix, RECORDS, dynamics={
        "records": {**RECORDS, "connection": CONNECTIONS}, "untracked_entities": untracked}, settings=settings).start()
    entry.install(harness.container.sync)
    run = runs.start_initial_sync(harness.store, harness.container.queue, harness.connection)
    SimpleWorker([harness.container.queue], connection=harness.store.redis).work(burst=True)
    assert harness.store.get_run("T1", run.id).status == RunStatus.finished
    yield harness
    incremental.unschedule(harness.store, "T1", harness.connection.id)
    entry.install(None)
    harness.stop()


@pytest.fixture(params=["tracked", "untracked"])
def world(request: pytest.FixtureRequest, key_prefix: str) -> Iterator[SyncHarness]:
    """Connections with change tracking (a delta link of their own) and without (a `modifiedon` watermark)."""
    yield from _world(key_prefix, set() if request.param == "tracked" else {"connection"})


@pytest.fixture
def tracked_world(key_prefix: str) -> Iterator[SyncHarness]:
    yield from _world(key_prefix, set())


def _cycle(world: SyncHarness) -> None:
    """One incremental cycle of the connection, enqueued by the scheduler and run by an RQ worker."""
    incremental.schedule(world.store, "T1", world.connection.id, world.settings, at=0)
    enqueued = incremental.schedule_due(world.store, world.container.queue, world.settings)
    assert enqueued
    SimpleWorker([world.container.queue], connection=world.store.redis).work(burst=True)


def _persons(world: SyncHarness) -> dict[str, int]:
    return {row["dynamicsContactId"]: row["id"] for row in world.marketo.leads() if row.get("dynamicsContactId")}


def _roles(world: SyncHarness) -> set[tuple[str, int, str]]:
    return {(r["externalOpportunityId"], r["leadId"], r["role"]) for r in world.marketo.opportunity_roles()}


def _synced_role(world: SyncHarness) -> tuple[int, dict[str, Any], tuple[str, int, str]]:
    """A connection whose role is in Marketo: its index, its row and the Marketo role's key."""
    persons, roles = _persons(world), _roles(world)
    select = [FROM, TO, ROLE]
    for index, row in enumerate(world.dynamics.expected_records("connection", select, annotate=True)):
        key = (row[FROM], persons.get(row[TO], -1), row[ROLE + FORMATTED])
        if key in roles:
            assert row["connectionid"] == world.dynamics.record_id("connection", index)
            return index, row, key
    raise AssertionError("no role was synced")


@pytest.mark.parametrize("settled", [False, True], ids=["first-cycle", "later-cycle"])
def test_a_role_moved_to_another_contact_moves_in_marketo_on_the_next_cycle(world: SyncHarness, settled: bool,
                                                                            caplog: pytest.LogCaptureFixture) -> None:
    """The first cycle reads the roles modified since the initial sync; a later one, from its delta link or
    watermark."""
    if settled:
        _cycle(world)
        store, connection_id = world.store, world.connection.id
        assert store.delta_links.get("T1", connection_id, "connection") or \
            store.watermarks.get("T1", connection_id, "connection")  # the roles' own position, kept
    index, row, (opportunity, old_lead, role) = _synced_role(world)
    persons = _persons(world)
    contact = next(c for c, lead in persons.items()
                   if c != row[TO] and (opportunity, lead, role) not in _roles(world))
    opportunities_before = world.marketo.opportunities()
    world.dynamics.update_record("connection", index, record2id=contact)  # the opportunity itself is unchanged

    with caplog.at_level(logging.INFO, logger="bot.sync.incremental"):
        _cycle(world)

    again = [r.getMessage() for r in caplog.records if "written again for their changed contact roles" in r.message]
    assert again and all(m.startswith("1 opportunities") for m in again)  # not the roles' unchanged ones

    roles = _roles(world)
    assert (opportunity, persons[contact], role) in roles
    assert (opportunity, old_lead, role) not in roles  # the old role is deleted, not left beside the new one
    assert len(world.marketo.opportunities()) == len(opportunities_before)
    assert world.store.sync_errors.count("T1", world.connection.id, [Entity.opportunity.value]) == 0


def test_a_role_deleted_in_dynamics_is_deleted_in_marketo(tracked_world: SyncHarness) -> None:
    world = tracked_world
    _cycle(world)  # the first cycle takes the connections' delta link
    index, _, key = _synced_role(world)
    others = _roles(world) - {key}
    world.dynamics.delete_record("connection", index)

    _cycle(world)

    assert _roles(world) == others


def test_roles_unchanged_leave_marketo_as_it_was(tracked_world: SyncHarness) -> None:
    world = tracked_world
    before = world.marketo.opportunity_roles()
    _cycle(world)
    _cycle(world)
    assert world.marketo.opportunity_roles() == before


def test_a_contact_given_another_role_has_only_that_role_in_marketo(tracked_world: SyncHarness) -> None:
    world = tracked_world
    _cycle(world)
    index, _, (opportunity, lead, role) = _synced_role(world)
    other = next(r for r in ("Stakeholder", "Economic Buyer") if r != role and (opportunity, lead, r) not in _roles(world))
    world.dynamics.update_record("connection", index, record2roleid=world.dynamics.connection_role_id(other))

    _cycle(world)

    roles = _roles(world)
    assert (opportunity, lead, other) in roles and (opportunity, lead, role) not in roles


def test_a_stale_role_marketo_refuses_to_delete_lists_its_opportunity_until_a_later_cycle_deletes_it(
    tracked_world: SyncHarness,
) -> None:
    world = tracked_world
    _cycle(world)
    index, _, key = _synced_role(world)
    others = _roles(world) - {key}
    world.marketo.refuse_role_deletes("1003", "Opportunity role is locked")
    world.dynamics.delete_record("connection", index)

    _cycle(world)

    assert key in _roles(world)  # not deleted, and not forgotten:
    errors = world.store.sync_errors
    assert errors.count("T1", world.connection.id, [Entity.opportunity.value]) == 1
    world.marketo.refuse_role_deletes(None)

    _cycle(world)  # retries the listed opportunity

    assert _roles(world) == others
    assert errors.count("T1", world.connection.id, [Entity.opportunity.value]) == 0


@pytest.fixture
def braked_world(key_prefix: str) -> Iterator[SyncHarness]:
    yield from _world(key_prefix, set(), {"MASS_CHANGE_LIMIT": 2, "TEAM_LEAD_USER_IDS": LEAD})


def test_a_cycle_the_brake_holds_leaves_changed_roles_for_after_the_decision(braked_world: SyncHarness) -> None:
    """The roles' opportunities are not written past a hold either: they may hold the held changes."""
    world = braked_world
    _cycle(world)
    index, row, (opportunity, old_lead, role) = _synced_role(world)
    persons = _persons(world)
    contact = next(c for c, lead in persons.items() if c != row[TO] and (opportunity, lead, role) not in _roles(world))
    world.dynamics.update_record("connection", index, record2id=contact)
    synced = {row["externalOpportunityId"] for row in world.marketo.opportunities()}
    others = [i for i in range(RECORDS["opportunity"])
              if world.dynamics.record_id("opportunity", i) in synced - {opportunity}][:3]
    for i in others:  # more overwrites than the limit
        world.dynamics.update_record("opportunity", i, name=f"Renamed {i}")
    roles = _roles(world)

    _cycle(world)

    hold = world.store.holds.get("T1", world.connection.id, Entity.opportunity.value)
    assert hold is not None
    assert _roles(world) == roles  # the moved role waits with the held changes
    assert decide_hold(world.store, AuditLog(world.store), world.container.slack, "T1", LEAD, hold_value(hold),
                       True).startswith("Approved")

    _cycle(world)

    moved = _roles(world)
    assert (opportunity, persons[contact], role) in moved and (opportunity, old_lead, role) not in moved
