"""The mass-change brake in the incremental cycle, after a real initial sync over loopback."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bot.audit import AuditLog
from bot.models import BrakeStatus, Entity
from bot.steps.brake import decide_hold
from bot.sync import incremental
from bot.views.brake import hold_value
from bot.views.ids import BRAKE_APPROVE_ACTION
from tests.integration.sync_harness import SyncHarness, synced_world

CHANNEL = "C0APPROVE"
LEAD = "U0LEAD01"


@pytest.fixture
def world(key_prefix: str) -> Iterator[SyncHarness]:
    yield from synced_world(key_prefix, {"lead": 60, "contact": 20},
                            settings={"MASS_CHANGE_LIMIT": 5, "APPROVAL_CHANNEL": CHANNEL,
                                      "TEAM_LEAD_USER_IDS": LEAD})


def _cycle(world: SyncHarness) -> str:
    return incremental.run_incremental(world.container.sync, "T1", world.connection.id, Entity.lead)


def _deleted(world: SyncHarness, record_id: str) -> bool:
    return bool(world.marketo.lead_by("dynamicsLeadId", record_id).get("dynamicsDeleted"))


def _decide(world: SyncHarness, approve: bool) -> str:
    hold = world.store.holds.get("T1", world.connection.id, Entity.lead.value)
    return decide_hold(world.store, AuditLog(world.store), world.container.slack, "T1", LEAD, hold_value(hold),
                       approve)


def test_ten_deletes_are_held_then_discarded(world: SyncHarness) -> None:
    ids = [world.dynamics.record_id("lead", i) for i in range(10)]
    for i in range(10):
        world.dynamics.delete_record("lead", i)
    link = world.store.delta_links.get("T1", world.connection.id, Entity.lead.value)

    assert _cycle(world) == "held"
    assert world.store.delta_links.get("T1", world.connection.id, Entity.lead.value) == link
    assert not any(_deleted(world, record_id) for record_id in ids)
    hold = world.store.holds.get("T1", world.connection.id, Entity.lead.value)
    assert (hold.status, hold.deletes, hold.overwrites, hold.limit) == (BrakeStatus.held, 10, 0, 5)
    assert len(hold.examples) == 5 and all(e.deleted and e.email for e in hold.examples)
    request = world.slack.message(*hold.messages[0])
    assert request.channel == CHANNEL and "10" in request.text
    assert any(BRAKE_APPROVE_ACTION in str(block) for block in request.blocks)

    world.dynamics.update_record("lead", 20, firstname="WhileHeld")
    assert _cycle(world) == "held"  # later cycles hold too, writing nothing
    assert world.marketo.lead_by("dynamicsLeadId", world.dynamics.record_id("lead", 20))["firstName"] != "WhileHeld"

    assert _decide(world, approve=False).startswith("Discarded")
    assert "already discarded" in _decide(world, approve=True)  # decided once
    assert world.slack.message(*hold.messages[0]).updates  # the request shows the decision
    assert _cycle(world) == "done"
    assert not any(_deleted(world, record_id) for record_id in ids)
    assert world.marketo.lead_by("dynamicsLeadId", world.dynamics.record_id("lead", 20))["firstName"] == "WhileHeld"
    assert world.store.holds.get("T1", world.connection.id, Entity.lead.value) is None
    skipped = list(world.store.sync_errors.iter_errors("T1", world.connection.id, [Entity.lead.value]))
    assert {e.id for e in skipped if e.code == "discarded"} == set(ids)
    assert all(f"<@{LEAD}>" in e.reason for e in skipped if e.code == "discarded")
    assert world.store.sync_errors.retry_candidates("T1", world.connection.id, Entity.lead.value,
                                                    world.settings.SYNC_RETRY_ATTEMPTS, 100) == []

    world.dynamics.update_record("lead", 21, firstname="Flowing")
    assert _cycle(world) == "done"
    assert world.marketo.lead_by("dynamicsLeadId", world.dynamics.record_id("lead", 21))["firstName"] == "Flowing"


def test_approved_deletes_are_written_by_the_next_cycle(world: SyncHarness) -> None:
    ids = [world.dynamics.record_id("lead", i) for i in range(10)]
    for i in range(10):
        world.dynamics.delete_record("lead", i)
    assert _cycle(world) == "held"
    assert _decide(world, approve=True).startswith("Approved")
    assert _cycle(world) == "done"
    assert all(_deleted(world, record_id) for record_id in ids)
    assert world.store.holds.get("T1", world.connection.id, Entity.lead.value) is None


def test_overwrites_count_only_changed_persons(world: SyncHarness) -> None:
    for i in range(8):
        world.dynamics.update_record("lead", i, firstname=f"Bulk{i}")
    assert _cycle(world) == "held"
    hold = world.store.holds.get("T1", world.connection.id, Entity.lead.value)
    assert (hold.deletes, hold.overwrites) == (0, 8)
    assert all(e.fields == ["firstName"] for e in hold.examples)


def test_creates_and_small_changes_pass(world: SyncHarness) -> None:
    world.dynamics.create_records("lead", 12)
    for i in range(3):
        world.dynamics.update_record("lead", i, firstname=f"Small{i}")
    assert _cycle(world) == "done"
    assert world.store.holds.get("T1", world.connection.id, Entity.lead.value) is None


@pytest.fixture
def linked(key_prefix: str) -> Iterator[SyncHarness]:
    """Leads linked to their accounts: Marketo shows each linked lead's company fields from its company."""
    yield from synced_world(key_prefix, {"account": 10, "lead": 60}, settings={"MASS_CHANGE_LIMIT": 5})


def test_a_linked_persons_company_fields_are_no_overwrites(linked: SyncHarness) -> None:
    world = linked
    touched = []
    for i in range(60):
        person = world.marketo.lead_by("dynamicsLeadId", world.dynamics.record_id("lead", i))
        if person.get("externalCompanyId") and len(touched) < 8:
            world.dynamics.update_record("lead", i, firstname=person["firstName"])  # saved again, unchanged
            touched.append(person)
    typed = world.expected(Entity.lead)
    assert len(touched) == 8  # Marketo shows their company's name, not the one typed on the lead (most differ):
    assert any(p["company"] != typed[p["dynamicsLeadId"]]["company"] for p in touched)
    assert _cycle(world) == "done"
    assert world.store.holds.get("T1", world.connection.id, Entity.lead.value) is None

    for i in range(8):
        world.dynamics.update_record("lead", i, firstname=f"Bulk{i}")
    assert _cycle(world) == "held"
    hold = world.store.holds.get("T1", world.connection.id, Entity.lead.value)
    assert hold.overwrites == 8 and all(e.fields == ["firstName"] for e in hold.examples)


@pytest.fixture
def untracked(key_prefix: str) -> Iterator[SyncHarness]:
    """Leads without change tracking: synced by `modifiedon`, braked the same way."""
    yield from synced_world(key_prefix, {"lead": 40}, settings={"MASS_CHANGE_LIMIT": 5}, untracked_entities={"lead"})


def test_a_table_without_change_tracking_is_braked_too(untracked: SyncHarness) -> None:
    world = untracked
    assert _cycle(world) == "done"  # the first cycle sets the watermark
    mark = world.store.watermarks.get("T1", world.connection.id, Entity.lead.value)
    for i in range(8):
        world.dynamics.update_record("lead", i, firstname=f"Bulk{i}")
    assert _cycle(world) == "held"
    assert world.store.watermarks.get("T1", world.connection.id, Entity.lead.value) == mark
    assert world.marketo.lead_by("dynamicsLeadId", world.dynamics.record_id("lead", 0))["firstName"] != "Bulk0"
    assert world.store.holds.get("T1", world.connection.id, Entity.lead.value).overwrites == 8
    assert _decide(world, approve=True).startswith("Approved")
    assert _cycle(world) == "done"
    assert world.marketo.lead_by("dynamicsLeadId", world.dynamics.record_id("lead", 0))["firstName"] == "Bulk0"
