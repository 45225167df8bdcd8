"""The whole conversation end to end: `connect-dynamics serve` and `connect-dynamics worker` as real
processes, real Redis, the emulators over loopback, signed requests, a real SMTP server; at the end
Marketo must hold exactly the Dynamics records (filter applied), field by field."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bot.store import Store
from sandbox.polling import wait_for
from sandbox.smtp import Inbox, smtp_server
from sandbox.stack import ADMIN, NOTIFY_CHANNEL, Stack
from sandbox.story import Story
from sandbox.verify import verify_sync
from tests.conftest import REDIS_URL


@pytest.fixture
def inbox_and_url() -> Iterator[tuple[str, Inbox]]:
    with smtp_server() as (url, inbox):
        yield url, inbox


@pytest.fixture
def bot_env(stack: Stack, key_prefix: str, inbox_and_url: tuple[str, Inbox]) -> dict[str, str]:
    return stack.env(REDIS_URL=REDIS_URL, REDIS_KEY_PREFIX=key_prefix, SMTP_URL=inbox_and_url[0])


@pytest.fixture
def stack_options() -> dict:
    return {"leads": 700, "contacts": 350, "accounts": 60}


def test_connect_approve_sync_and_notify(driver, worker, stack: Stack, store: Store,  # noqa: ANN001
                                         inbox_and_url: tuple[str, Inbox]) -> None:
    story = Story(driver, stack.slack, stack.dynamics.url)
    progress = story.request_and_approve()
    assert progress.channel == NOTIFY_CHANNEL
    posts = story.completion(timeout=240)
    summary = next(p for p in posts if p.text.startswith("Sync finished"))
    assert "records" in summary.text

    connection = store.active_connection(stack.slack.team_id)
    report = verify_sync(stack.dynamics, stack.marketo, connection.plan)
    assert report.ok, report.describe()
    assert all(check.expected > 0 for check in report.entities)

    _, inbox = inbox_and_url
    wait_for(lambda: inbox.messages, what="the completion email")
    assert inbox.messages[0]["To"] == story.notify_email
    dm = stack.slack.dm_channel(ADMIN)
    assert any(m.text.startswith("Sync finished") for m in stack.slack.messages(dm))
    updates = stack.slack.message(progress.channel, progress.ts).updates
    assert updates, "the progress message is updated in place"
