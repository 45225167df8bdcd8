"""Benchmark of the two-way sync: N changes on each side at once, both ways, polled and with webhooks.

    .venv/bin/python bench/bench_two_way.py          # 10,000 changes in Marketo and 10,000 in Dynamics
    BENCH_CHANGES=2000 .venv/bin/python bench/bench_two_way.py   # BENCH_QUICK=1: 2,000

After an initial sync of 2N leads, people change N leads in Marketo and N other leads in Dynamics.

Polling: rounds of cycles run in this process (both Dynamics → Marketo cycles, then the write-back), as
the schedule runs them every `INCREMENTAL_SYNC_MINUTES`, until a round writes nothing. Prints
- the rounds that still wrote before one wrote nothing (the time until both sides agree, as a ratio
  to one cycle interval) and the seconds of work that took as a ratio to the default 5-minute interval;
- Marketo and Dataverse calls per 1,000 changes;
- changes lost (fields that differ at the end) and writes echoed (writes in three more rounds): both 0.

With webhooks (a second world, the interval an hour away so only webhooks start cycles): the web app
serves `/dynamics/webhook` and `/marketo/webhook` over loopback, the Dataverse emulator posts its
notifications for the registered steps, Marketo's trigger campaign (Data Value Changes of firstName,
not by the API user) calls the "changed" webhook, and two real RQ workers (`python -m bot.worker`) run
the cycles. One thread makes the changes while this one watches the other side every `WATCH_SECONDS`.
Prints p50 / p95 seconds per change from the change to the other side having it (overall and per
direction), calls per 1,000 changes, lost, and echoed as above once the workers have nothing left to do.
Needs Redis at REDIS_URL (default redis://127.0.0.1:6379/15).
"""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import REDIS_URL, percentile, report, run_size, unique_prefix  # noqa: E402
from bot.app import build_app  # noqa: E402
from bot.models import DynamicsLock, Entity, RunStatus  # noqa: E402
from bot.sync import entry, incremental, runs, write_back  # noqa: E402
from bot.web import create_web_app  # noqa: E402
from sandbox.marketo_activities import API_SOURCE  # noqa: E402
from sandbox.marketo_webhooks import TriggerCampaign, WebhookDefinition  # noqa: E402
from sandbox.polling import wait_for  # noqa: E402
from sandbox.server import ServerThread, free_port  # noqa: E402
from tests.integration.sync_harness import SyncHarness  # noqa: E402

DEFAULT_INTERVAL_SECONDS = 300.0
MAX_ROUNDS = 10
WEBHOOK_SECRET = "bench-webhook-secret"
CHANGED_TEMPLATE = '{"leadId": {{lead.Id}}, "event": "changed"}'
WORKERS = 2
WATCH_SECONDS = 0.25
WEBHOOK_DEADLINE_SECONDS = 900.0


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


def synced_world(changes: int, settings: dict[str, str] | None = None) -> SyncHarness:
    """2N leads synced, the sync user known (its writes are not changes to send back)."""
    from rq import SimpleWorker  # after `bot`, which gives RQ its key prefix, as in the workers

    world = SyncHarness(REDIS_URL, unique_prefix("two-way"), {"lead": 2 * changes, "contact": 10},
                        dynamics={"filter_false_fraction": 0.0},
                        marketo={"calls_per_window": 1000, "window_seconds": 1},
                        settings={"MASS_CHANGE_LIMIT": str(4 * changes), **(settings or {})}).start()
    entry.install(world.container.sync)
    run = runs.start_initial_sync(world.store, world.container.queue, world.connection)
    SimpleWorker([world.container.queue], connection=world.store.redis).work(burst=True)
    assert world.store.get_run("T1", run.id).status == RunStatus.finished
    with world.container.dataverse("T1", world.connection.id) as client:
        user_id = client.whoami().user_id
    world.store.update_connection("T1", world.connection.id, lambda c: c.model_copy(update={"sync_user_id": user_id}))
    return world


def stop(world: SyncHarness) -> None:
    incremental.unschedule(world.store, "T1", world.connection.id)
    entry.install(None)
    world.stop()


def change_both_sides(world: SyncHarness, changes: int, made: dict[str, float] | None = None) -> None:
    """People change leads 0..N-1 in Marketo and N..2N-1 in Dynamics, one of each in turn (`made`: when)."""
    person_of = {row["dynamicsLeadId"]: row["id"] for row in world.marketo.leads() if row.get("dynamicsLeadId")}
    for index in range(changes):
        world.marketo.change_by_person(person_of[world.dynamics.record_id("lead", index)],
                                       {"firstName": f"Marketo{index}"})
        if made is not None:
            made[world.dynamics.record_id("lead", index)] = time.monotonic()
        world.dynamics.update_record("lead", changes + index, firstname=f"Dynamics{index}")
        if made is not None:
            made[world.dynamics.record_id("lead", changes + index)] = time.monotonic()


def writes(world: SyncHarness) -> int:
    posts = sum(1 for c in world.marketo.calls("/rest/v1/leads.json") if c.method == "POST" and c.admitted)
    return posts + len(world.dynamics.committed())


def round_of_cycles(world: SyncHarness) -> int:
    before = writes(world)
    for entity in (Entity.lead, Entity.contact):
        incremental.run_incremental(world.container.sync, "T1", world.connection.id, entity)
    write_back.run_write_back(world.container.sync, "T1", world.connection.id)
    return writes(world) - before


def polling(changes: int) -> None:
    world = synced_world(changes)
    try:
        change_both_sides(world, changes)
        marketo_calls, dataverse_calls = len(world.marketo.calls()), world.dynamics.requests
        started, rounds = time.perf_counter(), 0
        while round_of_cycles(world):
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
        report("two_way_writes_echoed", sum(round_of_cycles(world) for _ in range(3)))
    finally:
        stop(world)


def arrived(world: SyncHarness, changes: int, seen: dict[str, float], sync_user: str, read: int) -> int:
    """Note when each change is first on the other side; returns how many commits were read so far."""
    now = time.monotonic()
    ours = world.dynamics.committed(sync_user)
    for change in ours[read:]:  # Marketo's changes, written to Dynamics by the write-back
        if str(change.attributes.get("firstname", "")).startswith("Marketo"):
            seen.setdefault(change.record_id, now)
    wanted = {world.dynamics.record_id("lead", changes + i): f"Dynamics{i}" for i in range(changes)}
    for row in world.marketo.leads():
        record_id = row.get("dynamicsLeadId")
        if record_id in wanted and record_id not in seen and row.get("firstName") == wanted[record_id]:
            seen[record_id] = now
    return len(ours)


def settled(world: SyncHarness) -> bool:
    """No job waits or runs: the workers are done with everything the webhooks started."""
    from rq.registry import StartedJobRegistry  # after `bot`, as in synced_world

    queue = world.container.queue
    return queue.count == 0 and StartedJobRegistry(queue=queue).count == 0


def latencies_of(made: dict[str, float], seen: dict[str, float], records: set[str]) -> list[float]:
    return sorted(max(seen[r] - made[r], 0.0) for r in records if r in seen and r in made)


def with_webhooks(changes: int) -> None:
    """The changes are made by one thread while this one watches for them on the other side, every
    WATCH_SECONDS, so each latency runs from its own change. Once all arrived and the workers have
    nothing left to do, they stop and three rounds of cycles must find nothing to write."""
    port = free_port()
    settings = {"PUBLIC_URL": f"http://127.0.0.1:{port}", "MARKETO_WEBHOOK_SECRET": WEBHOOK_SECRET,
                "SLACK_SIGNING_SECRET": "signing", "INCREMENTAL_SYNC_MINUTES": "60"}
    world = synced_world(changes, settings)
    server = ServerThread(create_web_app(build_app(world.container), world.container), port=port).start()
    try:
        assert world.store.webhooks.dynamics_webhook("T1", world.connection.id) is not None
        world.store.take_dynamics_lock(DynamicsLock(url=world.dynamics.url, team_id="T1",
                                                    connection_id=world.connection.id))
        world.store.set_active_connection("T1", world.connection.id)
        world.marketo.add_trigger_campaign(TriggerCampaign(
            WebhookDefinition(name="Marketo changes in seconds", url=f"{server.url}/marketo/webhook",
                              template=CHANGED_TEMPLATE, headers={"X-Webhook-Token": WEBHOOK_SECRET}),
            attributes=frozenset({"firstName"}), source_is_not=frozenset({API_SOURCE})))
        for _ in range(WORKERS):
            world.spawn_worker()
        connection = world.store.get_connection("T1", world.connection.id)
        assert connection is not None and connection.sync_user_id
        marketo_calls, dataverse_calls = len(world.marketo.calls()), world.dynamics.requests
        made: dict[str, float] = {}
        seen: dict[str, float] = {}
        read = arrived(world, changes, seen, connection.sync_user_id, 0)
        maker = threading.Thread(target=change_both_sides, args=(world, changes, made), name="people")
        maker.start()
        deadline = time.monotonic() + WEBHOOK_DEADLINE_SECONDS
        while (maker.is_alive() or len(seen) < 2 * changes) and time.monotonic() < deadline:
            time.sleep(WATCH_SECONDS)
            read = arrived(world, changes, seen, connection.sync_user_id, read)
        maker.join()
        wait_for(lambda: settled(world), "the workers idle", timeout=max(deadline - time.monotonic(), 1.0), interval=WATCH_SECONDS)
        in_marketo = {world.dynamics.record_id("lead", i) for i in range(changes)}
        in_dynamics = {world.dynamics.record_id("lead", changes + i) for i in range(changes)}
        per_thousand = 1000 / (2 * changes)
        for name, records in (("", in_marketo | in_dynamics), ("_marketo_to_dynamics", in_marketo),
                              ("_dynamics_to_marketo", in_dynamics)):
            latencies = latencies_of(made, seen, records)
            report(f"two_way_webhooks{name}_p50_seconds_per_change", percentile(latencies, 50) if latencies else -1.0)
            report(f"two_way_webhooks{name}_p95_seconds_per_change", percentile(latencies, 95) if latencies else -1.0)
        report("two_way_webhooks_marketo_calls_per_1000_changes",
               (len(world.marketo.calls()) - marketo_calls) * per_thousand)
        report("two_way_webhooks_dataverse_calls_per_1000_changes",
               (world.dynamics.requests - dataverse_calls) * per_thousand)
        for worker in world.workers:
            world.kill(worker)
        report("two_way_webhooks_changes_lost", lost(world, changes))
        report("two_way_webhooks_writes_echoed", sum(round_of_cycles(world) for _ in range(3)))
    finally:
        server.stop()
        stop(world)


def main() -> None:
    changes = run_size("BENCH_CHANGES", 10_000, 2_000)
    polling(changes)
    with_webhooks(changes)


if __name__ == "__main__":
    main()
