"""SIGKILL the worker mid write-back: the next one resumes from the last applied page's paging token,
and nothing is lost or written twice. The worker is a real `python -m bot.worker` subprocess, killed
with its whole process group; the schedule (a fraction of a minute) enqueues the next run."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bot.models import Entity
from sandbox.polling import wait_for
from tests.integration.sync_harness import SyncHarness, synced_world
from tests.integration.test_write_back import sync_user, with_sync_user

pytestmark = pytest.mark.e2e
CHANGED = 300


@pytest.fixture
def world(key_prefix: str) -> Iterator[SyncHarness]:
    # Reads that scan 50 activities and calls that take 0.1 s: the write-back of 300 changes takes
    # more than a dozen pages and a few seconds.
    worlds = synced_world(key_prefix, {"lead": 400, "contact": 10}, settings={"INCREMENTAL_SYNC_MINUTES": 0.02},
                          marketo={"latency": 0.1, "activity_scan_block": 50})
    yield with_sync_user(next(worlds))
    next(worlds, None)


def test_a_killed_write_back_repeats_only_the_page_in_flight(world: SyncHarness) -> None:
    ids = [world.dynamics.record_id("lead", i) for i in range(CHANGED)]
    for index, record_id in enumerate(ids):
        lead = world.marketo.lead_by("dynamicsLeadId", record_id)
        assert lead is not None
        world.marketo.change_by_person(lead["id"], {"firstName": f"Form{index}"})
    user = sync_user(world)

    def written() -> int:
        return len(world.dynamics.committed(user))

    victim = world.spawn_worker()
    wait_for(lambda: written() > 0, "the write-back to write", timeout=60)
    world.kill(victim)
    killed_at = written()
    assert 0 < killed_at < CHANGED, "the kill came too late to interrupt the cycle"
    token_at_kill = world.store.write_back.token("T1", world.connection.id)

    world.spawn_worker()
    wait_for(lambda: written() >= CHANGED, "the write-back to resume", timeout=120)
    wait_for(lambda: world.store.write_back.token("T1", world.connection.id) != token_at_kill,
             "the position to move on", timeout=30)

    # Every change is in Dynamics, each record written exactly once: the repeated page found its
    # records already holding Marketo's values.
    committed = world.dynamics.committed(user)
    assert sorted(c.record_id for c in committed) == sorted(ids)
    with world.container.dataverse("T1", world.connection.id) as client:
        rows = client.read_by_ids(Entity.lead, ids[:: CHANGED // 12], ["firstname"])
    assert {r["leadid"]: r["firstname"] for r in rows} == {
        ids[i]: f"Form{i}" for i in range(0, CHANGED, CHANGED // 12)}
