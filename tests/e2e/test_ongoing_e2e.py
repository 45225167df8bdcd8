"""The ongoing sync from Slack, end to end: `connect-dynamics serve` and `worker` as real processes, real
Redis, the emulators over loopback, signed requests. After the initial sync, Dynamics changes reach
Marketo by the worker's own cycles; `status` shows them; `disable` stops them (a non-admin is refused),
`enable` catches up with nothing missed."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
import redis

from bot.roles import SWITCH_ONGOING
from bot.store import Store, jobs
from sandbox.driver import DriverResponse, SlackDriver
from sandbox.polling import wait_for
from sandbox.stack import ADMIN, LEADS, Stack
from sandbox.story import Story
from sandbox.verify import verify_sync
from tests.conftest import REDIS_URL

CYCLE_SECONDS = 1.5
# While off, this many cycle intervals pass with the worker's maintenance ticking: none may apply a change.
OFF_INTERVALS = 4


@pytest.fixture
def stack_options() -> dict:
    return {"leads": 60, "contacts": 30, "accounts": 10}


@pytest.fixture
def bot_env(stack: Stack, key_prefix: str) -> dict[str, str]:
    return stack.env(REDIS_URL=REDIS_URL, REDIS_KEY_PREFIX=key_prefix,
                     INCREMENTAL_SYNC_MINUTES=str(CYCLE_SECONDS / 60), SYNC_SWEEP_SECONDS="0.5")


def said(response: DriverResponse) -> str:
    """What the user reads of a command's answer: its text, or the texts of its blocks."""
    assert response.status == 200, response.text
    if not isinstance(response.json, dict):
        return response.text
    blocks = response.json.get("blocks") or []
    return "\n".join([response.json.get("text", ""), *(b["text"]["text"] for b in blocks if b.get("text"))])


def first_name(stack: Stack, index: int) -> Any:
    person = stack.marketo.lead_by("dynamicsContactId", stack.dynamics.record_id("contact", index))
    return person and person.get("firstName")


def open_home(driver: SlackDriver, stack: Stack) -> str:
    event = {"type": "event_callback", "team_id": driver.team_id, "api_app_id": "A0001", "event_id": "EvHome",
             "event_time": int(time.time()),
             "event": {"type": "app_home_opened", "user": ADMIN, "channel": "D0HOME", "tab": "home"}}
    body = json.dumps(event).encode()
    before = json.dumps(stack.slack.home(ADMIN))
    assert driver.raw(body, driver.signed_headers(body, content_type="application/json")).status == 200
    return wait_for(lambda: (home := json.dumps(stack.slack.home(ADMIN))) != before and home, what="the App Home")


def test_status_then_disable_and_enable_the_ongoing_sync(driver: SlackDriver, worker, stack: Stack,  # noqa: ANN001
                                                         store: Store, redis_client: redis.Redis,
                                                         key_prefix: str) -> None:
    story = Story(driver, stack.slack, stack.dynamics.url)
    story.go_live(timeout=240)
    team = stack.slack.team_id
    connection = store.active_connection(team)

    # Changes in Dynamics reach Marketo by the worker's cycles, and status shows what they wrote.
    for index in range(3):
        stack.dynamics.update_record("contact", index, firstname=f"Cycle{index}")
    wait_for(lambda: [first_name(stack, i) for i in range(3)] == ["Cycle0", "Cycle1", "Cycle2"],
             what="the changes in Marketo", timeout=60)
    # A cycle counts what it wrote page by page and ends a moment later: wait for both.
    status = wait_for(lambda: (text := said(driver.command(LEADS[0], text="status")))
                      and "written 3 in the last hour, 3 in 24 h" in text and "*Contacts* — last cycle" in text
                      and text,
                      what="status to count the written records", timeout=30)
    assert "*Ongoing sync: on*" in status
    contacts = next(line for line in status.splitlines() if line.startswith("*Contacts* — "))
    assert "last cycle" in contacts and "lag" in contacts and "backlog 0" in contacts and "next cycle" in contacts
    assert "0 failures waiting for retry" in contacts

    # Only admins turn it off.
    assert said(driver.command(LEADS[0], text="disable")) == SWITCH_ONGOING.refusal
    assert "The ongoing sync is off" in said(driver.command(ADMIN, text="disable"))
    assert "Nothing changed" in said(driver.command(ADMIN, text="disable"))
    sync_queue = jobs.queue(redis_client, key_prefix, "sync")
    wait_for(lambda: sync_queue.count == 0 and sync_queue.started_job_registry.count == 0,
             what="cycles in flight to end", timeout=30)

    stack.dynamics.update_record("contact", 5, firstname="WhileOff")
    deadline = time.monotonic() + OFF_INTERVALS * CYCLE_SECONDS
    while time.monotonic() < deadline:
        assert first_name(stack, 5) != "WhileOff", "a change was applied while the ongoing sync was off"
        time.sleep(0.2)
    assert first_name(stack, 5) != "WhileOff"
    assert worker.process.poll() is None  # the worker ticked all along
    off = said(driver.command(LEADS[0], text="status"))
    assert f"*Ongoing sync: off* (disabled by <@{ADMIN}>" in off and "no next cycle while off" in off
    assert "Ongoing sync: off" in open_home(driver, stack)

    # On again: it catches up from where it stopped, nothing missed.
    assert "on again" in said(driver.command(ADMIN, text="enable"))
    wait_for(lambda: first_name(stack, 5) == "WhileOff", what="the change made while off", timeout=60)
    report = verify_sync(stack.dynamics, stack.marketo, store.get_connection(team, connection.id).plan)
    assert report.ok, report.describe()
    assert "*Ongoing sync: on* (enabled by" in said(driver.command(LEADS[0], text="status"))
    audit = said(driver.command(ADMIN, text="audit"))
    assert audit.index("ongoing sync disabled") < audit.index("ongoing sync enabled")
