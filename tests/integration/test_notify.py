"""Progress, pause and completion notices over loopback: the Slack emulator and a real aiosmtpd server."""

from __future__ import annotations

import csv
import io
import threading
import time
from collections.abc import Iterator
from email import message_from_bytes, policy

import pytest
from aiosmtpd.controller import Controller
from slack_sdk import WebClient

from bot.config import Settings
from bot.models import Connection, Entity, EntityProgress, FlowState, RunStatus, SyncRun
from bot.notify import Notifier
from bot.slack_clients import OneWorkspace
from bot.store import Store
from bot.sync.checkpoint import BatchOutcome, Checkpoint, RunState
from bot.sync.ledger import LedgerEntry
from sandbox.server import free_port
from sandbox.slack import SlackEmulator

CHANNEL = "C0NOTIFY"


class Inbox:
    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], bytes]] = []

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: N802 - aiosmtpd's hook name
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return "250 OK"


@pytest.fixture
def slack() -> Iterator[SlackEmulator]:
    with SlackEmulator(min_update_interval=0.4) as emulator:
        yield emulator


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield inbox, port
    controller.stop()


def notifier(slack: SlackEmulator, store: Store, **settings: object) -> Notifier:
    client = WebClient(token=slack.bot_token, base_url=slack.api_url)
    return Notifier(OneWorkspace(client), Settings(NOTIFY_CHANNEL=CHANNEL, PROGRESS_UPDATE_SECONDS=0.4, **settings), store)


def saved_run(store: Store, email: str | None = "ops@example.com") -> SyncRun:
    connection = Connection(team_id="T1", requester="U0REQ", state=FlowState.syncing, notify_email=email)
    store.save_connection(connection)
    run = SyncRun(team_id="T1", connection_id=connection.id, requester="U0REQ", status=RunStatus.running,
                  entities=[EntityProgress(entity=Entity.lead, estimated=1000),
                            EntityProgress(entity=Entity.contact, estimated=500)])
    store.save_run(run)
    return run


def test_progress_updates_are_throttled_per_message_across_workers(slack: SlackEmulator, store: Store) -> None:
    run = saved_run(store)
    workers = [notifier(slack, store) for _ in range(3)]  # three processes' notifiers, one Redis
    assert workers[0].progress("T1", run.id)
    errors: list[BaseException] = []
    deadline = time.monotonic() + 2.2

    def hammer(n: Notifier) -> None:
        while time.monotonic() < deadline:
            try:
                n.progress("T1", run.id)
            except BaseException as exc:  # a 429 from the emulator would land here
                errors.append(exc)
                return

    threads = [threading.Thread(target=hammer, args=(w,)) for w in workers for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    updates = [c for c in slack.calls("chat.update") if c.ok]
    assert len(updates) == len(slack.calls("chat.update")) and 3 <= len(updates) <= 6
    gaps = [b.time - a.time for a, b in zip(updates, updates[1:], strict=False)]
    assert all(gap >= 0.4 for gap in gaps), gaps
    posted = slack.messages(CHANNEL)
    assert len(posted) == 1 and store.get_run("T1", run.id).progress_message == (CHANNEL, posted[0].ts)


def _book_failures(store: Store, run: SyncRun, n: int) -> None:
    state = RunState(store, "T1", run.id)
    state.save(Checkpoint(entity=Entity.lead))
    lease = state.lease(run.connection_id, Entity.lead, ttl=5)
    assert lease.take()
    failures = [LedgerEntry(entity="lead", id=f"id-{i}", email=f"bad {i}", code="1003", message=f"Invalid email, {i}")
                for i in range(n)]
    state.book(Entity.lead, BatchOutcome(seq=0, end_link=None, end_offset=n, read=n + 10, created=10, skipped=n,
                                         failures=failures, api_calls=4), lease)
    lease.release()


def test_completion_posts_summary_csv_dm_and_email(slack: SlackEmulator, store: Store, smtp: tuple[Inbox, int]) -> None:
    inbox, port = smtp
    run = saved_run(store)
    _book_failures(store, run, 3)
    store.update_run("T1", run.id, lambda r: r.model_copy(update={"status": RunStatus.finished,
                                                                  "finished_at": time.time()}))
    n = notifier(slack, store, SMTP_URL=f"smtp://127.0.0.1:{port}", SMTP_FROM="bot@example.com")
    n.completed("T1", run.id)

    summary = [m for m in slack.messages(CHANNEL) if "Sync finished" in m.text]
    assert len(summary) == 1 and "created" in str(summary[0].blocks)
    files = slack.files()
    assert len(files) == 1 and files[0].channel == CHANNEL
    rows = list(csv.reader(io.StringIO(files[0].content.decode())))
    assert rows[0] == ["id", "email", "code", "message"]
    assert rows[1:] == [[f"id-{i}", f"bad {i}", "1003", f"Invalid email, {i}"] for i in range(3)]
    dm = slack.dm_channel("U0REQ")
    assert slack.calls("conversations.open") and [m for m in slack.messages(dm) if "Sync finished" in m.text]

    assert len(inbox.messages) == 1
    sender, recipients, raw = inbox.messages[0]
    email = message_from_bytes(raw, policy=policy.default)
    assert sender == "bot@example.com" and recipients == ["ops@example.com"]
    assert email["Subject"] == "Dynamics → Marketo sync finished"
    body = email.get_content()
    assert "lead: 10 created, 0 updated, 3 skipped" in body and "API calls used: 4" in body


def test_a_run_without_failures_uploads_no_csv(slack: SlackEmulator, store: Store) -> None:
    run = saved_run(store, email=None)
    store.update_run("T1", run.id, lambda r: r.model_copy(update={"status": RunStatus.finished}))
    notifier(slack, store).completed("T1", run.id)
    assert slack.files() == [] and any("Sync finished" in m.text for m in slack.messages(CHANNEL))


def test_pause_notice_reaches_channel_and_requester(slack: SlackEmulator, store: Store) -> None:
    run = saved_run(store)
    store.update_run("T1", run.id, lambda r: r.model_copy(update={
        "status": RunStatus.paused, "message": "Marketo's daily API quota is used up."}))
    notifier(slack, store).paused("T1", run.id)
    paused = [m for m in slack.messages(CHANNEL) if "paused" in m.text.lower()]
    assert paused and "daily API quota" in paused[0].text
    assert [m for m in slack.messages(slack.dm_channel("U0REQ")) if "paused" in m.text.lower()]
