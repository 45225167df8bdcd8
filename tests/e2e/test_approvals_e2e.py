"""Step 3 and team-lead approval end to end: signed clicks into `connect-dynamics serve` (and the
worker where a sweep must run), real Redis, the Slack and Marketo emulators over loopback.

Each test plays the conversation up to the approval request with `Story`, then clicks Approve /
Reject as different people and checks what Slack, Marketo, Redis and the audit log show.
"""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from rq import Queue
from slack_sdk import WebClient

from bot.models import Approval, ApprovalStatus, Connection, FlowState
from bot.store import Store
from bot.views import ids
from sandbox.driver import DriverResponse, SlackDriver
from sandbox.polling import wait_for
from sandbox.slack import PostedMessage
from sandbox.stack import ADMIN, APPROVAL_CHANNEL, BOT_TOKEN, LEADS, NOTIFY_CHANNEL, Stack
from sandbox.story import Story
from tests.conftest import REDIS_URL

pytestmark = pytest.mark.e2e

TEAM = "T0001"
OUTSIDER = "U0NOBODY1"  # neither a Marketo admin nor a team lead
FIELD_CREATE = "/rest/v1/leads/schema/fields.json"
TINY_TTL_HOURS = "0.0003"  # about one second


@pytest.fixture
def stack_options() -> dict:
    return {"leads": 40, "contacts": 20, "accounts": 10}


@pytest.fixture
def env_overrides() -> dict[str, str]:
    """Extra settings for one test (override with `@pytest.mark.parametrize("env_overrides", ...)`)."""
    return {}


@pytest.fixture
def bot_env(stack: Stack, key_prefix: str, env_overrides: dict[str, str]) -> dict[str, str]:
    return stack.env(REDIS_URL=REDIS_URL, REDIS_KEY_PREFIX=key_prefix, **env_overrides)


def overrides(**settings: str):  # noqa: ANN201 - a pytest mark
    return pytest.mark.parametrize("env_overrides", [settings], ids=["-".join(settings)])


# -- helpers ----------------------------------------------------------------------------------------

def up_to_step3(driver: SlackDriver, stack: Stack) -> Story:
    """Steps 1 and 2 as the admin; the plan is shown and Step 3 comes next."""
    story = Story(driver, stack.slack, stack.dynamics.url)
    story.open_step1()
    story.enter_credentials()
    story.choose_fields()
    return story


def request_approval(driver: SlackDriver, stack: Stack) -> tuple[PostedMessage, str]:
    """Steps 1-3 as the admin, then Begin sync: the posted request and its approval id."""
    request = up_to_step3(driver, stack).begin_sync()
    return request, button_value(request, ids.APPROVE_ACTION)


def button_value(message: PostedMessage, action_id: str) -> str:
    """The value of a button as first posted (the message may have been updated since)."""
    return next(element["value"] for block in message.history[0].blocks if block.get("type") == "actions"
                for element in block["elements"] if element["action_id"] == action_id)


def click(driver: SlackDriver, user: str, request: PostedMessage, action_id: str = ids.APPROVE_ACTION,
          value: str | None = None) -> DriverResponse:
    response = driver.block_action(user, action_id, value=value or button_value(request, action_id),
                                   message=request)
    assert response.status == 200
    return response


def told(stack: Stack, user: str, fragment: str, count: int = 1) -> list[str]:
    """Wait until `user` has `count` ephemeral messages containing `fragment`; returns their texts."""
    def matching() -> list[str]:
        return [m.text for m in stack.slack.ephemeral(user) if fragment.lower() in m.text.lower()]

    wait_for(lambda: len(matching()) >= count, what=f"{count} ephemeral(s) to {user} saying {fragment!r}")
    return matching()


def current(stack: Stack, request: PostedMessage) -> PostedMessage:
    return stack.slack.message(request.channel, request.ts)


def rendered(message: PostedMessage) -> str:
    return json.dumps(message.blocks)


def has_buttons(message: PostedMessage) -> bool:
    return any(block.get("type") == "actions" for block in message.blocks)


def field_creates(stack: Stack) -> int:
    return sum(1 for call in stack.marketo.calls(FIELD_CREATE) if call.method == "POST")


def approval(store: Store, approval_id: str) -> Approval:
    found = store.get_approval(TEAM, approval_id)
    assert found is not None
    return found


def connection(store: Store) -> Connection:
    found = store.active_connection(TEAM)
    assert found is not None
    return found


def run_ids(store: Store) -> set[str]:
    """Ids of the team's sync-run records (`{prefix}:{team}:run:{id}`, not their sub-keys)."""
    head = store.keys.run(TEAM, "")
    keys = (key.decode()[len(head):] for key in store.redis.scan_iter(match=head + "*"))
    return {rest for rest in keys if ":" not in rest}


def sync_jobs(store: Store) -> list[str]:
    """The sync queue's jobs, queued or waiting for others (opportunities wait for accounts and contacts)."""
    queue = Queue(f"{store.prefix}-sync", connection=store.redis)
    return queue.job_ids + queue.deferred_job_registry.get_job_ids()


def audit_actions(store: Store, action: str) -> list[str]:
    return [entry.actor for entry in store.audit_entries(TEAM, count=200) if entry.action == action]


def dm_texts(stack: Stack, user: str) -> list[str]:
    return [m.text for m in stack.slack.messages(stack.slack.dm_channel(user))]


def assert_still_pending(store: Store, stack: Stack, approval_id: str) -> None:
    assert approval(store, approval_id).status == ApprovalStatus.pending
    assert approval(store, approval_id).approvers == []
    assert connection(store).state == FlowState.awaiting_approval
    assert field_creates(stack) == 0
    assert run_ids(store) == set()
    assert not stack.slack.calls("chat.update")


def assert_one_run_started(store: Store, stack: Stack) -> str:
    """Exactly one run, one job per planned entity (all of that run), one schema change."""
    wait_for(lambda: audit_actions(store, "sync_started"), what="the sync to be started")
    conn = connection(store)
    assert run_ids(store) == {conn.run_id}
    jobs = sync_jobs(store)
    assert len(jobs) == len(conn.plan.entities)
    assert all(job.startswith(f"sync-{conn.run_id}-") for job in jobs)
    assert field_creates(stack) == 1
    assert len(audit_actions(store, "approved")) == 1
    assert len(audit_actions(store, "sync_started")) == 1
    return conn.run_id


def wait_decided(stack: Stack, request: PostedMessage, word: str) -> PostedMessage:
    return wait_for(lambda: (m := current(stack, request)) and word in rendered(m) and m,
                      what=f"the request message to show {word!r}")


def after_expiry(store: Store, approval_id: str) -> None:
    expires_at = approval(store, approval_id).expires_at
    wait_for(lambda: time.time() > expires_at + 0.05, what="the approval to pass its expiry")


def assert_expired_and_editable(store: Store, stack: Stack, request: PostedMessage, approval_id: str) -> None:
    decided = wait_decided(stack, request, "Expired")
    assert not has_buttons(decided)
    wait_for(lambda: any("expired" in text for text in dm_texts(stack, ADMIN)), what="the requester's DM")
    assert approval(store, approval_id).status == ApprovalStatus.expired
    conn = connection(store)
    assert conn.state == FlowState.confirm and conn.approval_id is None
    assert audit_actions(store, "expired") == ["system"]
    assert field_creates(stack) == 0 and run_ids(store) == set()


# -- the tests ---------------------------------------------------------------------------------------

@overrides(TEAM_LEAD_USER_IDS=",".join([ADMIN, *LEADS]))
def test_non_lead_and_the_requester_are_refused(driver: SlackDriver, stack: Stack, store: Store) -> None:
    """A non-lead may not decide; nor may the requester, even when they are a lead too."""
    request, approval_id = request_approval(driver, stack)
    assert request.channel == APPROVAL_CHANNEL

    click(driver, OUTSIDER, request)
    assert "only team leads" in told(stack, OUTSIDER, "team leads")[0].lower()
    click(driver, OUTSIDER, request, ids.REJECT_ACTION)
    told(stack, OUTSIDER, "team leads", count=2)

    click(driver, ADMIN, request)
    assert "another team lead" in told(stack, ADMIN, "your own request")[0]
    click(driver, ADMIN, request, ids.REJECT_ACTION)
    told(stack, ADMIN, "your own request", count=2)

    assert not stack.slack.calls("views.open")[1:], "no reject-reason modal for either"
    assert_still_pending(store, stack, approval_id)


@overrides(APPROVALS_REQUIRED="2")
def test_two_of_three_leads(driver: SlackDriver, stack: Stack, store: Store) -> None:
    request, approval_id = request_approval(driver, stack)
    first, second = LEADS[0], LEADS[1]

    click(driver, first, request)
    told(stack, first, "1 of 2")
    waiting = wait_for(lambda: (m := current(stack, request)).updates and m, what="the vote shown in place")
    assert "1 of 2" in rendered(waiting) and first in rendered(waiting)
    assert has_buttons(waiting)
    assert approval(store, approval_id).approvers == [first]
    assert connection(store).state == FlowState.awaiting_approval
    assert field_creates(stack) == 0 and run_ids(store) == set()

    click(driver, first, request)
    assert "already approved" in told(stack, first, "already approved")[0]
    assert approval(store, approval_id).approvers == [first]

    click(driver, second, request)
    decided = wait_decided(stack, request, "Approved")
    text = rendered(decided)
    assert first in text and second in text and "<!date^" in text
    assert not has_buttons(decided)
    wait_for(lambda: stack.slack.messages(NOTIFY_CHANNEL), what="the progress message")
    record = approval(store, approval_id)
    assert record.status == ApprovalStatus.approved and record.decided_by == second
    assert audit_actions(store, "approval_recorded") == [first]
    assert audit_actions(store, "approved") == [second]
    assert_one_run_started(store, stack)
    assert len(stack.slack.messages(NOTIFY_CHANNEL)) == 1


@overrides(APPROVAL_TTL_HOURS=TINY_TTL_HOURS)
def test_click_after_expiry(driver: SlackDriver, stack: Stack, store: Store) -> None:
    request, approval_id = request_approval(driver, stack)
    connection_id = connection(store).id
    after_expiry(store, approval_id)

    click(driver, LEADS[0], request)
    assert "expired" in told(stack, LEADS[0], "expired")[0]
    assert_expired_and_editable(store, stack, request, approval_id)

    opened = len(stack.slack.calls("views.open"))
    response = driver.command(ADMIN)
    assert response.status == 200 and not response.text, response.text
    call = wait_for(lambda: stack.slack.calls("views.open")[opened:], what="the flow to open again")[0]
    assert call.ok
    view = json.loads(call.args["view"]) if isinstance(call.args["view"], str) else call.args["view"]
    assert view["callback_id"] == ids.PLAN_CALLBACK, "it resumes at the saved plan, ready to ask again"
    assert connection(store).id == connection_id, "the same connection resumes; no new one is started"


@overrides(APPROVAL_TTL_HOURS="0.0001", SYNC_SWEEP_SECONDS="0.1")
def test_worker_sweeps_expired_requests_without_a_click(driver: SlackDriver, worker, stack: Stack,  # noqa: ANN001
                                                        store: Store) -> None:
    """Nobody clicks: the worker expires the request. Slack rate-limits the post of the request, so it
    expires (0.36 s) before its message lands; the message must still end up showing "Expired"."""
    story = up_to_step3(driver, stack)
    stack.slack.set_rate_limit("chat.postMessage", calls=1, window=1.5)
    WebClient(token=BOT_TOKEN, base_url=stack.slack.api_url).chat_postMessage(channel="C0ELSEWHERE", text="busy")
    request = story.begin_sync()
    approval_id = button_value(request, ids.APPROVE_ACTION)
    assert_expired_and_editable(store, stack, request, approval_id)
    assert not store.redis.exists(store.keys.pending_approvals(TEAM))
    assert not stack.slack.ephemeral(), "nobody clicked"


def test_twenty_simultaneous_clicks_start_one_sync(driver: SlackDriver, stack: Stack, store: Store) -> None:
    request, approval_id = request_approval(driver, stack)
    clickers = [LEADS[i % len(LEADS)] for i in range(20)]  # each lead clicks six or seven times
    with ThreadPoolExecutor(max_workers=20) as pool:
        statuses = list(pool.map(lambda lead: click(driver, lead, request).status, clickers))
    assert statuses == [200] * 20

    decided = wait_decided(stack, request, "Approved")
    wait_for(lambda: len(stack.slack.ephemeral()) >= 19, what="the 19 losing clicks to be answered")
    assert all("already been approved" in m.text for m in stack.slack.ephemeral())
    record = approval(store, approval_id)
    assert record.status == ApprovalStatus.approved and len(record.approvers) == 1
    assert rendered(decided).count("*Approved*") == 1
    assert len(current(stack, request).updates) == 1
    assert_one_run_started(store, stack)
    wait_for(lambda: stack.slack.messages(NOTIFY_CHANNEL), what="the progress message")
    assert len(stack.slack.messages(NOTIFY_CHANNEL)) == 1


def test_reject_with_a_reason(driver: SlackDriver, stack: Stack, store: Store) -> None:
    request, approval_id = request_approval(driver, stack)
    lead = LEADS[0]
    click(driver, lead, request, ids.REJECT_ACTION)
    call = stack.slack.wait_for("views.open", lambda c: c.response.get("view", {}).get("callback_id")
                                == ids.REJECT_REASON_CALLBACK)
    assert call.ok
    modal = stack.slack.view(call.response["view"]["id"])

    def submit(reason: str) -> DriverResponse:
        return driver.view_submission(lead, modal, {ids.REJECT_REASON_BLOCK: {ids.REJECT_REASON_ACTION: {
            "type": "plain_text_input", "value": reason}}})

    refused = submit("   ")
    assert refused.json["response_action"] == "errors"
    assert ids.REJECT_REASON_BLOCK in refused.json["errors"]
    assert approval(store, approval_id).status == ApprovalStatus.pending

    reason = "Wrong org: use the production URL"
    assert submit(reason).status == 200
    decided = wait_decided(stack, request, "Rejected")
    assert reason in rendered(decided) and not has_buttons(decided)
    wait_for(lambda: any(reason in text for text in dm_texts(stack, ADMIN)), what="the requester's DM")
    conn = connection(store)
    assert conn.state == FlowState.confirm and conn.approval_id is None
    assert audit_actions(store, "rejected") == [lead]

    click(driver, LEADS[1], request)
    assert "already been rejected" in told(stack, LEADS[1], "already")[0]
    assert approval(store, approval_id).status == ApprovalStatus.rejected
    assert field_creates(stack) == 0 and run_ids(store) == set()


def test_forged_approval_ids_change_nothing(driver: SlackDriver, stack: Stack, store: Store) -> None:
    other = Approval(team_id="T0OTHER", connection_id="c-other", requester=ADMIN, expires_at=time.time() + 3600)
    store.save_approval(other)
    request = PostedMessage(APPROVAL_CHANNEL, "1700000000.000100", "forged", [], None, "U0BOT")
    for forged in ("no-such-approval", other.id):
        click(driver, LEADS[0], request, value=forged)
    answers = told(stack, LEADS[0], "no longer exists", count=2)
    assert all("/connect-dynamics status" in text for text in answers)
    assert store.get_approval("T0OTHER", other.id) == other
    assert store.get_approval(TEAM, other.id) is None
    assert field_creates(stack) == 0 and run_ids(store) == set()
    assert not stack.slack.calls("chat.update") and not store.audit_entries(TEAM)


def test_audit_command_lists_steps_with_actors(driver: SlackDriver, stack: Stack, store: Store) -> None:
    request, _ = request_approval(driver, stack)
    click(driver, LEADS[0], request)
    wait_decided(stack, request, "Approved")
    wait_for(lambda: audit_actions(store, "sync_started"), what="the sync_started audit entry")

    response = driver.command(ADMIN, text="audit")
    assert response.status == 200
    text = json.dumps(response.json["blocks"])
    for action in ("connection started", "credentials verified", "plan saved", "approval requested",
                   "approved", "schema applied", "sync started"):
        assert f"*{action}*" in text, action
    assert f"<@{ADMIN}>" in text and f"<@{LEADS[0]}>" in text

    refused = driver.command(LEADS[0], text="audit")
    assert refused.status == 200
    assert "only marketo admins" in refused.text.lower()
    assert "approval requested" not in refused.text
