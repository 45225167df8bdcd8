"""`/connect-dynamics status | cancel | resume` through the running server (and worker)."""

from __future__ import annotations

import json

import pytest
import redis

from bot.models import Entity, EntityProgress, FlowState, RunStatus, SyncRun
from bot.store import Store
from bot.views import ids
from sandbox.driver import DriverResponse, SlackDriver
from sandbox.polling import wait_for
from sandbox.stack import ADMIN, LEADS, NOTIFY_CHANNEL, Stack
from sandbox.story import Story
from tests.conftest import REDIS_URL


def _answer(response: DriverResponse) -> str:
    """What the user sees of a command's answer (plain text, or JSON text + blocks), lower-cased."""
    return response.text.lower()


def _run(store: Store, team: str):  # noqa: ANN202
    connection = store.active_connection(team)
    return store.get_run(team, connection.run_id) if connection and connection.run_id else None


def _leads(run: SyncRun) -> EntityProgress:
    """The run's lead progress (accounts run first, so leads are not the first entity)."""
    return next(p for p in run.entities if p.entity == Entity.lead)


def test_status_and_cancel_of_a_pending_request(driver: SlackDriver, stack: Stack, store: Store) -> None:
    assert "not connected yet" in _answer(driver.command(LEADS[0], text="status"))
    story = Story(driver, stack.slack, stack.dynamics.url)
    story.open_step1()
    story.enter_credentials()
    story.choose_fields()
    request = story.begin_sync()
    assert "waiting for a team lead" in _answer(driver.command(LEADS[0], text="status"))

    assert "admin" in _answer(driver.command(LEADS[0], text="cancel"))  # leads are not admins here
    response = driver.command(ADMIN, text="cancel")
    assert response.status == 200
    wait_for(lambda: "Withdrawn" in json.dumps(stack.slack.message(request.channel, request.ts).blocks),
             what="the request to show it was withdrawn")
    connection = store.active_connection(stack.slack.team_id)
    assert connection.state == FlowState.confirm
    assert "ready to ask a team lead" in _answer(driver.command(ADMIN, text="status"))
    assert not [c for c in stack.marketo.calls() if c.method == "POST" and "schema" in c.path]


@pytest.mark.parametrize("stack_options", [{"leads": 12000, "contacts": 0, "accounts": 0,
                                            "marketo_window_seconds": 20.0}])
def test_cancel_a_running_sync_stops_it(driver: SlackDriver, worker, stack: Stack, store: Store) -> None:  # noqa: ANN001
    story = Story(driver, stack.slack, stack.dynamics.url)
    story.request_and_approve()
    team = stack.slack.team_id
    wait_for(lambda: (run := _run(store, team)) and _leads(run).created > 0, what="some records written", timeout=60)
    assert "cancelling" in _answer(driver.command(ADMIN, text="cancel"))
    run = wait_for(lambda: (r := _run(store, team)) and r.status == RunStatus.cancelled and r, what="the run cancelled",
                   timeout=60)
    assert 0 < stack.marketo.lead_count() < 12000
    assert _leads(run).created == stack.marketo.lead_count()
    assert store.active_connection(team).state == FlowState.cancelled
    wait_for(lambda: any(p.text.startswith("Sync cancelled") for p in stack.slack.messages(NOTIFY_CHANNEL)),
             what="the cancelled summary")


@pytest.fixture
def bot_env(stack: Stack, key_prefix: str, request: pytest.FixtureRequest) -> dict[str, str]:
    """MARKETO_DAILY_QUOTA is small only for the test named for it."""
    quota = {"MARKETO_DAILY_QUOTA": "8"} if "daily_quota" in request.node.name else {}
    return stack.env(REDIS_URL=REDIS_URL, REDIS_KEY_PREFIX=key_prefix, **quota)


@pytest.mark.parametrize("stack_options", [{"leads": 4500, "contacts": 0, "accounts": 0}])
def test_daily_quota_pauses_and_the_resume_button_finishes(driver: SlackDriver, worker, stack: Stack,  # noqa: ANN001
                                                           store: Store, redis_client: redis.Redis,
                                                           key_prefix: str) -> None:
    story = Story(driver, stack.slack, stack.dynamics.url)
    story.request_and_approve()
    team = stack.slack.team_id
    run = wait_for(lambda: (r := _run(store, team)) and r.status == RunStatus.paused and r, what="the pause",
                   timeout=60)
    assert "quota" in (run.message or "").lower()
    paused = wait_for(lambda: [p for p in stack.slack.messages(NOTIFY_CHANNEL) if p.text.startswith("Sync paused")],
                      what="the pause notice")[0]
    assert store.active_connection(team).state == FlowState.paused

    # Each day (here: each reset of the counter) the quota allows 8 more calls; the run goes on from
    # its checkpoint at every Resume until everything is written, and nothing is written twice.
    def pause_notices() -> int:
        return len([p for p in stack.slack.messages(NOTIFY_CHANNEL) if p.text.startswith("Sync paused")])

    def settled(pauses_before: int):  # noqa: ANN202 - the run once it paused again or finished, else None
        run = _run(store, team)
        if run.status == RunStatus.finished or (run.status == RunStatus.paused and pause_notices() > pauses_before):
            return run
        return None

    for _ in range(8):
        for key in redis_client.scan_iter(match=f"{key_prefix}:global:marketo:*day*"):
            redis_client.delete(key)  # midnight CST: the quota resets
        before = pause_notices()
        driver.block_action(ADMIN, ids.RESUME_SYNC_ACTION, value=run.id, message=paused)
        run = wait_for(lambda before=before: settled(before), what="the next pause or the end", timeout=60)
        if run.status == RunStatus.finished:
            break
    assert run.status == RunStatus.finished
    assert stack.marketo.lead_count() == _leads(run).created == _leads(run).estimated
    assert _leads(run).updated == 0, "a resume never rewrites what was written"


def test_an_unknown_subcommand_is_echoed_as_text(driver: SlackDriver) -> None:
    answer = driver.command(ADMIN, text="<!channel>&<https://evil|x>").text
    assert "I don't know `&lt;!channel&gt;&amp;&lt;https://evil|x&gt;`" in answer and "<!channel>" not in answer
