"""Changes in seconds: with PUBLIC_URL set, going live registers a Dataverse webhook at the real web app
(over loopback); the emulator's notifications start the entity's cycle on a real RQ worker long before
its interval, coalesced, without echoing the sync user's own writes; disable removes the webhook."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest
from rq import SimpleWorker

from bot.app import build_app
from bot.audit import AuditLog
from bot.metrics import WEBHOOKS
from bot.models import Entity, RunStatus
from bot.steps import ongoing
from bot.steps.status import status
from bot.sync import runs
from bot.sync.checkpoint import BACKFILL, EntityState, RunState
from bot.sync.live import DYNAMICS_CHANGE_JOB
from bot.sync.sweeper import MAX_ATTEMPTS, sweep
from bot.sync.webhook_removal import UNREGISTER_JOB, follow_end
from bot.web import create_web_app
from sandbox.polling import wait_for
from sandbox.server import ServerThread, free_port
from tests.integration.sync_harness import SyncHarness, synced_world
from tests.unit.test_views_common import blocks_text

ADMIN = "U0ADMIN"


@pytest.fixture
def world(key_prefix: str) -> Iterator[tuple[SyncHarness, str]]:
    port = free_port()
    public_url = f"http://127.0.0.1:{port}"
    settings = {"PUBLIC_URL": public_url, "SLACK_SIGNING_SECRET": "signing", "INCREMENTAL_SYNC_MINUTES": "60"}
    for harness in synced_world(key_prefix, {"lead": 20, "contact": 5}, settings=settings):
        harness.store.set_active_connection("T1", harness.connection.id)
        server = ServerThread(create_web_app(build_app(harness.container), harness.container), port=port).start()
        yield harness, public_url
        server.stop()


def change_jobs(harness: SyncHarness) -> list[str]:
    return [job.id for job in harness.container.queue.get_jobs() if job.func_name == DYNAMICS_CHANGE_JOB]


def first_name(harness: SyncHarness, index: int) -> str | None:
    return harness.marketo.lead_by("dynamicsLeadId", harness.dynamics.record_id("lead", index)).get("firstName")


def test_going_live_registers_the_webhook_with_a_step_per_table_and_message(world: tuple[SyncHarness, str]) -> None:
    harness, public_url = world
    [endpoint] = harness.dynamics.webhooks.endpoints.values()  # the initial sync's worker registered it
    assert endpoint.url == f"{public_url}/dynamics/webhook?team=T1&connection={harness.connection.id}"
    steps = {(s.entity, s.message) for s in harness.dynamics.webhooks.steps.values()}
    assert steps == {(e, m) for e in ("lead", "contact") for m in ("Create", "Update", "Delete")}
    kept = harness.store.webhooks.dynamics_webhook("T1", harness.connection.id)
    assert kept is not None and kept.endpoint_id == endpoint.id
    assert kept.key.encode() not in harness.store.redis.get(harness.store.keys.dynamics_webhook("T1", harness.connection.id))
    text = blocks_text(status(harness.store, "T1", harness.settings).blocks)
    assert "Changes: webhooks + poll every 60 min" in text


def test_a_change_in_dynamics_reaches_marketo_by_webhook_coalesced(world: tuple[SyncHarness, str]) -> None:
    harness, _ = world
    accepted = WEBHOOKS.labels("dynamics", "accepted")._value.get()
    for number in range(5):
        harness.dynamics.update_record("lead", 2, firstname=f"Hooked{number}")
    wait_for(lambda: harness.dynamics.webhooks.deliveries == 5, "five notifications")
    assert len(change_jobs(harness)) == 1  # five notifications, one queued cycle
    assert WEBHOOKS.labels("dynamics", "accepted")._value.get() == accepted + 1

    harness.spawn_worker()  # the next scheduled cycle is an hour away
    wait_for(lambda: first_name(harness, 2) == "Hooked4", "the change in Marketo", timeout=60)
    harness.dynamics.update_record("contact", 1, firstname="Later")
    contact_id = harness.dynamics.record_id("contact", 1)
    wait_for(lambda: harness.marketo.lead_by("dynamicsContactId", contact_id).get("firstName") == "Later",
             "a second change, a new job", timeout=60)


def test_the_sync_users_own_writes_and_bad_keys_start_nothing(world: tuple[SyncHarness, str]) -> None:
    harness, public_url = world
    with harness.container.dataverse("T1", harness.connection.id) as client:
        me = client.whoami().user_id
        harness.store.update_connection("T1", harness.connection.id,
                                        lambda c: c.model_copy(update={"sync_user_id": me}))
        client.update(Entity.lead, harness.dynamics.record_id("lead", 5), {"firstname": "OurOwn"})
    wait_for(lambda: harness.dynamics.webhooks.deliveries == 1, "the notification")
    assert change_jobs(harness) == []

    url = f"{public_url}/dynamics/webhook?team=T1&connection={harness.connection.id}"
    body = json.dumps({"MessageName": "Update", "PrimaryEntityName": "lead", "PrimaryEntityId": "x",
                       "InitiatingUserId": "u", "UserId": "u"})
    assert httpx.post(url, content=body, headers={"x-api-key": "wrong"}).status_code == 401
    assert httpx.post(url.replace("T1", "T2"), content=body).status_code == 401
    assert change_jobs(harness) == []


def test_disable_removes_the_webhook_and_enable_makes_it_again(world: tuple[SyncHarness, str]) -> None:
    harness, _ = world
    log, queue = AuditLog(harness.store), harness.container.queue
    ongoing.disable(harness.store, log, "T1", ADMIN, queue)
    SimpleWorker([queue], connection=harness.store.redis).work(burst=True)
    assert harness.dynamics.webhooks.endpoints == {} and harness.dynamics.webhooks.steps == {}
    assert harness.store.webhooks.dynamics_webhook("T1", harness.connection.id) is None

    ongoing.enable(harness.store, harness.settings, log, "T1", ADMIN, queue)
    SimpleWorker([queue], connection=harness.store.redis).work(burst=True)
    assert len(harness.dynamics.webhooks.endpoints) == 1 and len(harness.dynamics.webhooks.steps) == 6
    assert harness.store.webhooks.dynamics_webhook("T1", harness.connection.id) is not None


def test_a_cancelled_sync_removes_the_webhook(world: tuple[SyncHarness, str]) -> None:
    harness, _ = world
    connection = harness.store.get_connection("T1", harness.connection.id)
    assert connection is not None
    run = runs.start_initial_sync(harness.store, harness.container.queue, connection, kind="resync")
    runs.request_cancel(harness.store, "T1", run.id)  # its jobs stop before their first batch
    SimpleWorker([harness.container.queue], connection=harness.store.redis).work(burst=True)
    assert harness.store.get_run("T1", run.id).status == RunStatus.cancelled
    assert harness.dynamics.webhooks.endpoints == {}
    assert harness.store.webhooks.dynamics_webhook("T1", harness.connection.id) is None


def resync_without_jobs(harness: SyncHarness) -> tuple[RunState, str]:
    """A re-read of a live connection whose entity jobs never ran (their worker is gone)."""
    connection = harness.store.get_connection("T1", harness.connection.id)
    assert connection is not None
    run = runs.start_initial_sync(harness.store, harness.container.queue, connection, kind="resync")
    harness.container.queue.empty()
    return RunState(harness.store, "T1", run.id), run.id


def removal_ran(harness: SyncHarness) -> bool:
    SimpleWorker([harness.container.queue], connection=harness.store.redis).work(burst=True)
    gone = harness.dynamics.webhooks.endpoints == {} and harness.dynamics.webhooks.steps == {}
    return gone and harness.store.webhooks.dynamics_webhook("T1", harness.connection.id) is None


def test_cancelling_a_sync_whose_entities_are_all_idle_removes_the_webhook(world: tuple[SyncHarness, str]) -> None:
    harness, _ = world
    state, run_id = resync_without_jobs(harness)
    backfill = harness.store.get_run("T1", run_id).model_copy(update={"kind": BACKFILL, "status": RunStatus.cancelled})
    follow_end(harness.store, harness.container.queue, backfill)  # the cycles go on while a backfill runs
    assert harness.container.queue.count == 0
    state.set_state(Entity.lead, EntityState.failed, "Dynamics refused.")
    state.set_state(Entity.contact, EntityState.paused, "Marketo quota.")
    runs.request_cancel(harness.store, "T1", run_id, queue=harness.container.queue)  # settled here: no job runs
    assert harness.store.get_run("T1", run_id).status == RunStatus.cancelled
    assert [job.func_name for job in harness.container.queue.get_jobs()] == [UNREGISTER_JOB]
    assert removal_ran(harness)


def test_the_sweeper_giving_up_on_a_dead_worker_removes_the_webhook(world: tuple[SyncHarness, str]) -> None:
    harness, _ = world
    state, run_id = resync_without_jobs(harness)
    for entity in (Entity.lead, Entity.contact):
        state.save(state.load(entity).model_copy(update={"state": EntityState.running, "attempts": MAX_ATTEMPTS}))
    assert sweep(harness.store, harness.container.queue, lease_seconds=1) == []
    assert harness.store.get_run("T1", run_id).status == RunStatus.paused
    assert removal_ran(harness)
