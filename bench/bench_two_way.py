"""Benchmark of the two-way sync (polling): N changes on each side at once, both ways.

    .venv/bin/python bench/bench_two_way.py          # 10,000 changes in Marketo and 10,000 in Dynamics
    BENCH_CHANGES=2000 .venv/bin/python bench/bench_two_way.py

After an initial sync of 2N leads, people change N leads in Marketo and N other leads in Dynamics.
Then rounds of cycles run in this process (both Dynamics → Marketo cycles, then the write-back), as
the schedule runs them every `INCREMENTAL_SYNC_MINUTES`, until a round writes nothing. Prints
`name: value` lines:
- the rounds that still wrote before one wrote nothing (the time until both sides agree, as a ratio
  to one cycle interval) and the seconds of work that took as a ratio to the default 5-minute interval;
- Marketo and Dataverse calls per 1,000 changes;
- changes lost (fields that differ at the end) and writes echoed (writes in three more rounds): both 0.
Needs Redis at REDIS_URL (default redis://127.0.0.1:6379/15).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from rq import SimpleWorker

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import REDIS_URL, report, run_size, unique_prefix  # noqa: E402
from bot.models import Entity, RunStatus  # noqa: E402
from bot.sync import entry, incremental, runs, write_back  # noqa: E402
from tests.integration.sync_harness import SyncHarness  # noqa: E402

DEFAULT_INTERVAL_SECONDS = 300.0
MAX_ROUNDS = 10


def lost(world: SyncHarness, changes: int) -> int:
    """Changes that are not on both sides at the end."""
    with world.container.dataverse("T1", world.connection.id) as client:
        dynamics = {r["leadid"]: r["firstname"] for page in client.iter_pages(Entity.lead, ["leadid", "firstname"],
                                                                              track_changes=False)
                    for r in page.records}
    marketo = {row["dynamicsLeadId"]: row.get("firstName") for row in world.marketo.leads() if row.get("dynamicsLeadId")}
    wanted = {world.dynamics.record_id("lead", i): f"Marketo{i}" for i in range(changes)}
    wanted |= {world.dynamics.record_id("lead", changes + i): f"Dynamics{i}" for i in range(changes)}
    return sum(1 for record_id, name in wanted.items() if dynamics.get(record_id) != name or marketo.get(record_id) != name)


def main() -> None:
    changes = run_size("BENCH_CHANGES", 10_000, 2_000)
    world = SyncHarness(REDIS_URL, unique_prefix("two-way"), {"lead": 2 * changes, "contact": 10},
                        dynamics={"filter_false_fraction": 0.0},
                        marketo={"calls_per_window": 1000, "window_seconds": 1},
                        settings={"MASS_CHANGE_LIMIT": 4 * changes}).start()  # people's changes, not a mass change
    entry.install(world.container.sync)
    try:
        run = runs.start_initial_sync(world.store, world.container.queue, world.connection)
        SimpleWorker([world.container.queue], connection=world.store.redis).work(burst=True)
        assert world.store.get_run("T1", run.id).status == RunStatus.finished
        with world.container.dataverse("T1", world.connection.id) as client:
            user_id = client.whoami().user_id
        world.store.update_connection("T1", world.connection.id,
                                      lambda c: c.model_copy(update={"sync_user_id": user_id}))
        for index in range(changes):
            lead = world.marketo.lead_by("dynamicsLeadId", world.dynamics.record_id("lead", index))
            assert lead is not None
            world.marketo.change_by_person(lead["id"], {"firstName": f"Marketo{index}"})
            world.dynamics.update_record("lead", changes + index, firstname=f"Dynamics{index}")

        marketo_calls, dataverse_calls = len(world.marketo.calls()), world.dynamics.requests

        def writes() -> int:
            posts = sum(1 for c in world.marketo.calls("/rest/v1/leads.json") if c.method == "POST" and c.admitted)
            return posts + len(world.dynamics.committed())

        def round_of_cycles() -> int:
            before = writes()
            for entity in (Entity.lead, Entity.contact):
                incremental.run_incremental(world.container.sync, "T1", world.connection.id, entity)
            write_back.run_write_back(world.container.sync, "T1", world.connection.id)
            return writes() - before

        started, rounds = time.perf_counter(), 0
        while round_of_cycles():
            rounds += 1
            if rounds >= MAX_ROUNDS:
                break
        work = time.perf_counter() - started
        per_thousand = 1000 / (2 * changes)
        report("two_way_rounds_until_quiet_ratio_to_cycle_interval", rounds)
        report("two_way_work_seconds_ratio_to_default_interval", work / DEFAULT_INTERVAL_SECONDS)
        report("two_way_marketo_calls_per_1000_changes", (len(world.marketo.calls()) - marketo_calls) * per_thousand)
        report("two_way_dataverse_calls_per_1000_changes", (world.dynamics.requests - dataverse_calls) * per_thousand)
        report("two_way_changes_lost", lost(world, changes))
        echoed = sum(round_of_cycles() for _ in range(3))
        report("two_way_writes_echoed", echoed)
    finally:
        incremental.unschedule(world.store, "T1", world.connection.id)
        entry.install(None)
        world.stop()


if __name__ == "__main__":
    main()
