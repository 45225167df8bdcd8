"""Time to render `/connect-dynamics status` with a busy ongoing sync in Redis, and Redis memory per stored error.

    .venv/bin/python bench/bench_status.py          # 1M synced records and 1M stored errors
    BENCH_STATUS_RECORDS=200000 .venv/bin/python bench/bench_status.py

Fills a fresh key prefix in real Redis with a synced connection (leads, contacts, accounts) whose
ongoing sync wrote N records over the last 24 hours, stored as the cycles store them (per entity a
series of records written per minute, filled through the store's own `page_done`, plus the running
totals), and N failed records on the ongoing sync's error list (booked through the store in chunks,
as the cycles book them). Then renders the status 20 times through the real
step (Redis reads and Block Kit, serialised as Slack gets it) and prints `name: value` lines:
- `status_render_p95_ratio_to_slack_limit`: p95 render time / Slack's 3 s (status must render in under 1 s);
- `redis_bytes_per_1000_errors`: what the stored errors take in Redis (MEMORY USAGE of the prefix's
  keys, before and after the errors were written: other users of the same Redis do not count).
The prefix is deleted at the end.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import redis  # noqa: E402
from cryptography.fernet import Fernet  # noqa: E402

from bench.common import REDIS_URL, delete_prefix, percentile, report, run_size, unique_prefix  # noqa: E402
from bot import flow  # noqa: E402
from bot.crypto import SecretBox  # noqa: E402
from bot.models import (  # noqa: E402
    CheckResult,
    Connection,
    Entity,
    EntityPlan,
    EntityProgress,
    FieldPlan,
    FlowState,
    RunStatus,
    SyncRun,
)
from bot.steps.status import status  # noqa: E402
from bot.store import FailedRecord, Store  # noqa: E402

SLACK_LIMIT_SECONDS = 3.0
RENDERS = 20
TEAM = "T0BENCH"
ADMIN = "U0BENCH"
ENTITIES = (Entity.lead, Entity.contact, Entity.account)
DAY_MINUTES = 24 * 60
ERROR_CHUNK = 10_000


def synced_connection(store: Store, records: int) -> Connection:
    """A connection taken through the flow to `synced`, as after its initial sync of `records` records."""
    per_entity = records // len(ENTITIES)
    plan = FieldPlan(entities=[EntityPlan(entity=e, mappings=[], id_field=e.marketo_id_field, record_count=per_entity)
                               for e in ENTITIES])
    connection = flow.start_connection(store, TEAM, ADMIN)
    flow.record_credentials(store, TEAM, connection.id, ADMIN, url="https://contoso.crm.dynamics.com",
                            username="sync@contoso.com", sync_user_id="guid",
                            checklist=[CheckResult(name="credentials valid", ok=True)])
    flow.save_selection(store, TEAM, connection.id, ADMIN, {e.value: [e.primary_id] for e in ENTITIES})
    flow.save_plan(store, TEAM, connection.id, ADMIN, plan)
    flow.request_approval(store, TEAM, connection.id, "approval1")
    flow.approve(store, TEAM, connection.id, "approval1")
    run = SyncRun(team_id=TEAM, connection_id=connection.id, requester=ADMIN, status=RunStatus.finished,
                  started_at=time.time() - 7200, finished_at=time.time() - 3600,
                  entities=[EntityProgress(entity=e, estimated=per_entity, created=per_entity, done=True)
                            for e in ENTITIES])
    store.save_run(run)
    flow.start_sync(store, TEAM, connection.id, run.id)
    synced = flow.follow_run(store, run)
    assert synced is not None and synced.state == FlowState.synced
    return synced


def fill_written(store: Store, connection: Connection, records: int) -> None:
    """`records` written by the cycles over the last day, spread over every minute of every entity."""
    now = time.time()
    per_entity = records // len(ENTITIES)
    for entity in ENTITIES:
        base, extra = divmod(per_entity, DAY_MINUTES)
        for minute in range(DAY_MINUTES):
            written = base + (1 if minute < extra else 0)
            store.ongoing.page_done(TEAM, connection.id, entity.value, written=written, at=now - minute * 60)
        store.incremental.record(TEAM, connection.id, entity.value, {"read": per_entity, "updated": per_entity})
    store.incremental.schedule(TEAM, connection.id, now + 120)


def fill_errors(store: Store, connection: Connection, errors: int) -> None:
    """`errors` records on the ongoing sync's error list, booked in chunks as a cycle books them."""
    now = time.time()
    for start in range(0, errors, ERROR_CHUNK):
        entity = ENTITIES[(start // ERROR_CHUNK) % len(ENTITIES)]
        failures = [FailedRecord(id=f"{i:08x}-0000-4000-8000-{i:012x}", email=f"person{i}@example.com", code="1003",
                                 reason="Invalid email address: 'person@' is not an email address")
                    for i in range(start, min(start + ERROR_CHUNK, errors))]
        store.sync_errors.book(TEAM, connection.id, entity.value, failures, now)


def prefix_bytes(client: redis.Redis, prefix: str) -> int:
    return sum(int(client.memory_usage(key, samples=0) or 0) for key in client.scan_iter(match=f"{prefix}:*",
                                                                                        count=1000))


def render_seconds(store: Store) -> list[float]:
    timings = []
    for _ in range(RENDERS):
        started = time.perf_counter()
        answer = status(store, TEAM).to_dict()  # what the slash command's ack carries
        timings.append(time.perf_counter() - started)
        assert "Ongoing sync: on" in str(answer["blocks"])
    return timings


def main() -> None:
    records = run_size("BENCH_STATUS_RECORDS", 1_000_000, 100_000)
    errors = run_size("BENCH_STATUS_ERRORS", 1_000_000, 100_000)
    client = redis.Redis.from_url(REDIS_URL)
    prefix = unique_prefix("status")
    store = Store(client, SecretBox(Fernet.generate_key().decode()), prefix=prefix)
    try:
        started = time.monotonic()
        connection = synced_connection(store, records)
        fill_written(store, connection, records)
        before = prefix_bytes(client, prefix)
        fill_errors(store, connection, errors)
        after = prefix_bytes(client, prefix)
        print(f"filled {records:,} synced records and {errors:,} errors in {time.monotonic() - started:.1f} s",
              file=sys.stderr)
        shown = store.ongoing_figures(TEAM, connection.id, [e.value for e in ENTITIES], time.time())
        assert sum(row.written_last_day for row in shown.entities) == records // len(ENTITIES) * len(ENTITIES)
        assert sum(row.pending_failures for row in shown.entities) == errors

        timings = render_seconds(store)
        p95 = percentile(timings, 95)
        per_thousand = (after - before) * 1000 / errors
        print(f"status render p95 / Slack 3 s: {p95 / SLACK_LIMIT_SECONDS:.4f}")
        print(f"Redis memory per 1,000 stored errors: {per_thousand:,.0f} bytes")
        report("status_records_written", records)
        report("status_errors_stored", errors)
        report("status_render_p95_ms", p95 * 1000)
        report("status_render_p95_ratio_to_slack_limit", f"{p95 / SLACK_LIMIT_SECONDS:.4f}")
        report("redis_bytes_per_1000_errors", int(per_thousand))
    finally:
        delete_prefix(client, prefix)
        client.close()


if __name__ == "__main__":
    main()
