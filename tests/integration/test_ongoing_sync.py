"""The ongoing sync's figures and its switch, with real cycles over loopback after a real initial sync:
what a cycle records for the status, and a cycle turned off mid-way stopping after its page."""

from __future__ import annotations

import dataclasses
import re
import time
from collections.abc import Iterator
from typing import Any

import pytest
from rq import SimpleWorker

from bot import audit
from bot.audit import AuditLog
from bot.config import Settings
from bot.models import Entity
from bot.steps import ongoing
from bot.steps.status import status
from bot.store import Store
from bot.sync import incremental
from bot.sync.ports import SyncServices
from tests.integration.sync_harness import SyncHarness, synced_world
from tests.support.connections import at_confirm
from tests.unit.test_views_common import blocks_text

ADMIN = "U0ADMIN"


@pytest.fixture
def world(key_prefix: str) -> Iterator[SyncHarness]:
    for harness in synced_world(key_prefix, {"lead": 300, "contact": 50}):
        harness.store.set_active_connection("T1", harness.connection.id)
        yield harness


def lead_names(world: SyncHarness, indexes: range) -> list[str | None]:
    return [(world.marketo.lead_by("dynamicsLeadId", world.dynamics.record_id("lead", i)) or {}).get("firstName")
            for i in indexes]


class TurnsOffAfterFirstPage:
    """The Dataverse client (pages of two), except that an admin turns the ongoing sync off while the
    cycle reads its first page of changes (it still has pages to go)."""

    def __init__(self, client: Any, turn_off: Any) -> None:
        self._client, self._turn_off = client, turn_off
        client.page_size = 2

    def iter_changes(self, *args: Any, **kwargs: Any) -> Iterator[Any]:
        for number, page in enumerate(self._client.iter_changes(*args, **kwargs)):
            if number == 0:
                self._turn_off()
            yield page

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


def small_pages(world: SyncHarness, turn_off: Any) -> SyncServices:
    def dataverse(team_id: str, connection_id: str) -> Any:
        return TurnsOffAfterFirstPage(world.container.dataverse(team_id, connection_id), turn_off)

    return dataclasses.replace(world.container.sync, dataverse=dataverse)


def test_a_cycle_records_what_status_shows(world: SyncHarness) -> None:
    for index in range(3):
        world.dynamics.update_record("lead", index, firstname=f"Changed{index}")
    started = time.time()
    assert incremental.run_incremental(world.container.sync, "T1", world.connection.id, Entity.lead) == "done"
    assert incremental.run_incremental(world.container.sync, "T1", world.connection.id, Entity.contact) == "done"

    figures = world.store.ongoing_figures("T1", world.connection.id, ["lead", "contact"], time.time())
    leads, contacts = figures.entities
    assert (leads.written_last_hour, leads.written_last_day, leads.backlog) == (3, 3, 0)
    assert started <= leads.caught_up_at <= leads.last_cycle_at <= time.time()
    assert leads.newest_change_from is not None
    assert (contacts.written_last_hour, contacts.newest_change_at) == (0, None)  # a cycle with nothing to do
    assert contacts.last_cycle_at is not None and figures.enabled

    text = blocks_text(status(world.store, "T1").blocks)
    assert "*Ongoing sync: on*" in text
    assert re.search(r"\*Leads\* — last cycle \d+ s ago · lag \d+ s · backlog 0 · written 3 in the last hour, 3 in 24 h",
                     text)


def test_turned_off_mid_cycle_it_stops_after_the_page_and_enable_catches_up(world: SyncHarness) -> None:
    changed = range(10, 16)  # three pages of two
    for index in changed:
        world.dynamics.update_record("lead", index, firstname=f"Late{index}")
    link = world.store.delta_links.get("T1", world.connection.id, "lead")
    log = AuditLog(world.store)

    def turn_off() -> None:
        ongoing.disable(world.store, log, "T1", ADMIN)

    services = small_pages(world, turn_off)
    assert incremental.run_incremental(services, "T1", world.connection.id, Entity.lead) == "disabled"
    assert sum(name is not None and name.startswith("Late") for name in lead_names(world, changed)) == 2
    assert world.store.delta_links.get("T1", world.connection.id, "lead") == link  # kept: nothing missed
    row = world.store.ongoing_figures("T1", world.connection.id, ["lead"], time.time()).entities[0]
    assert (row.backlog, row.last_cycle_at, row.written_last_hour) == (0, None, 2)

    # Off: unscheduled; rescheduled meanwhile (a resync that ended), the schedule drops it again; a job
    # enqueued before the switch does nothing.
    assert world.store.incremental.due_at("T1", world.connection.id) is None
    incremental.schedule(world.store, "T1", world.connection.id, world.settings, at=time.time() - 1)
    assert incremental.schedule_due(world.store, world.container.queue, world.settings) == []
    assert world.store.incremental.due_at("T1", world.connection.id) is None
    assert incremental.run_incremental(world.container.sync, "T1", world.connection.id, Entity.lead) == "disabled"
    assert "Nothing changed" in ongoing.disable(world.store, log, "T1", ADMIN).text

    assert "on again" in ongoing.enable(world.store, world.settings, log, "T1", ADMIN).text
    assert world.store.incremental.due_at("T1", world.connection.id) <= time.time()
    assert len(incremental.schedule_due(world.store, world.container.queue, world.settings)) == 3  # and the write-back
    SimpleWorker([world.container.queue], connection=world.store.redis).work(burst=True)
    assert lead_names(world, changed) == [f"Late{index}" for index in changed]
    assert world.store.delta_links.get("T1", world.connection.id, "lead") != link
    actions = [(e.actor, e.action) for e in log.recent("T1")]
    assert actions[-2:] == [(ADMIN, audit.ONGOING_SYNC_DISABLED), (ADMIN, audit.ONGOING_SYNC_ENABLED)]


def test_disable_and_enable_refuse_without_a_synced_connection(store: Store) -> None:
    log, settings = AuditLog(store), Settings()
    assert "not connected yet" in ongoing.disable(store, log, "T9", ADMIN).text
    at_confirm(store, "T9", ADMIN)
    answer = ongoing.enable(store, settings, log, "T9", ADMIN).text
    assert "once the initial sync has finished" in answer and "Step 3 of 3" in answer
    assert log.recent("T9")[-1].action == audit.PLAN_SAVED  # nothing audited for a refusal
