"""An approval whose effects fail recovers, end to end: Marketo refuses a field create, the request
shows why with a Retry button; a lead's Retry runs only what is left, or `/connect-dynamics cancel`
withdraws it and unlocks the Marketo instance when no field was created. Signed requests into
`connect-dynamics serve`, real Redis, the emulators over loopback."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from bot.crypto import SecretBox
from bot.marketo.instance import instance_id
from bot.models import ApprovalStatus, EffectsState, EffectStep, FlowState
from bot.store import Store
from bot.views import ids
from sandbox.driver import SlackDriver
from sandbox.polling import wait_for
from sandbox.slack import PostedMessage
from sandbox.stack import ADMIN, LEADS, Stack
from sandbox.story import Story
from tests.e2e.test_approvals_e2e import (
    OUTSIDER,
    approval,
    audit_actions,
    click,
    connection,
    current,
    has_buttons,
    rendered,
    run_ids,
    told,
)

pytestmark = pytest.mark.e2e

REFUSAL = "Field limit reached <!channel> & more"


@pytest.fixture
def stack_options() -> dict:
    return {"leads": 40, "contacts": 20, "accounts": 10}


def instance_store(store: Store, stack: Stack) -> Store:
    """The store as the bot sees it: the Dynamics org lock is kept per Marketo instance."""
    return Store(store.redis, SecretBox(stack.encryption_key), prefix=store.prefix,
                 marketo_instance=instance_id(stack.marketo.url))


def approve_with_refused_fields(driver: SlackDriver, stack: Stack, store: Store,
                                refuse: Callable[[list[str]], list[str]]) -> tuple[PostedMessage, str, list[str]]:
    """Steps 1-3 with two custom lead fields planned; Marketo refuses the fields `refuse` picks from the
    planned ones; a lead approves. Returns the request, its approval id and the planned field names."""
    story = Story(driver, stack.slack, stack.dynamics.url)
    story.open_step1()
    story.enter_credentials()
    story.choose_fields(custom_fields=2)
    request = story.begin_sync()
    names = [field.name for field in connection(store).plan.fields_to_create]
    for name in refuse(names):
        stack.marketo.refuse_field(name, REFUSAL)
    click(driver, LEADS[0], request)
    stuck = wait_for(lambda: (m := current(stack, request)) and retry_value(m) and m,
                     what="the request to show a Retry button")
    return request, retry_value(stuck) or "", names


def retry_value(message: PostedMessage) -> str | None:
    return next((element["value"] for block in message.blocks if block.get("type") == "actions"
                 for element in block["elements"] if element["action_id"] == ids.RETRY_APPROVAL_ACTION), None)


def assert_stuck(store: Store, stack: Stack, request: PostedMessage, approval_id: str) -> None:
    text = rendered(current(stack, request))
    assert "Starting the sync failed" in text
    assert "Field limit reached &lt;!channel&gt; &amp; more" in text and "<!channel>" not in text
    record = approval(store, approval_id)
    assert (record.status, record.effects_state) == (ApprovalStatus.approved, EffectsState.failed)
    assert connection(store).state == FlowState.approved
    assert run_ids(store) == set()
    assert audit_actions(store, "effects_failed") == ["system"]


def test_retry_runs_only_what_is_left(driver: SlackDriver, stack: Stack, store: Store) -> None:
    request, approval_id, names = approve_with_refused_fields(driver, stack, store, lambda names: names[-1:])
    assert_stuck(store, stack, request, approval_id)
    record = approval(store, approval_id)
    assert record.fields_created == names[:-1] and record.effects_done == [EffectStep.org_locked]
    assert stack.marketo.fields_asked() == names

    resume = driver.command(ADMIN, text="resume")
    assert "presses retry" in resume.text.lower() and "no sync has run yet" not in resume.text

    click(driver, OUTSIDER, request, ids.RETRY_APPROVAL_ACTION, value=approval_id)
    assert "only team leads" in told(stack, OUTSIDER, "team leads")[0].lower()
    assert approval(store, approval_id).effects_state == EffectsState.failed

    stack.marketo.refuse_field(names[-1], None)
    click(driver, LEADS[1], request, ids.RETRY_APPROVAL_ACTION, value=approval_id)
    wait_for(lambda: audit_actions(store, "sync_started"), what="the sync to start")
    decided = wait_for(lambda: (m := current(stack, request)) and not has_buttons(m) and m,
                       what="the request to show the sync starting, without buttons")
    assert "The sync is starting" in rendered(decided) and "Starting the sync failed" not in rendered(decided)

    assert stack.marketo.fields_asked() == [*names, names[-1]], "fields created the first time are not asked again"
    assert {field["name"] for field in stack.marketo.fields()} >= set(names)
    record = wait_for(lambda: (a := approval(store, approval_id)).effects_state == EffectsState.done and a,
                      what="the effects to be recorded as done")
    assert record.fields_created == names
    assert record.effects_done == list(EffectStep)
    assert audit_actions(store, "effects_retried") == [LEADS[1]]
    assert len(run_ids(store)) == 1 and connection(store).state == FlowState.syncing

    click(driver, LEADS[2], request, ids.RETRY_APPROVAL_ACTION, value=approval_id)
    assert "already been approved" in told(stack, LEADS[2], "already")[0]
    assert len(audit_actions(store, "sync_started")) == 1


def test_cancel_withdraws_a_stuck_request_and_unlocks_the_org(driver: SlackDriver, stack: Stack,
                                                                store: Store) -> None:
    request, approval_id, names = approve_with_refused_fields(driver, stack, store, lambda names: names)
    assert_stuck(store, stack, request, approval_id)
    bot_store = instance_store(store, stack)
    [lock] = bot_store.dynamics_locks(stack.slack.team_id)
    assert lock.connection_id == connection(store).id
    assert approval(store, approval_id).fields_created == []

    answer = driver.command(ADMIN, text="cancel")
    assert answer.status == 200
    assert "withdrawn" in answer.text and "no longer locked" in answer.text
    record = approval(store, approval_id)
    assert (record.status, record.decided_by) == (ApprovalStatus.cancelled, ADMIN)
    conn = connection(store)
    assert (conn.state, conn.approval_id) == (FlowState.confirm, None)
    assert bot_store.dynamics_locks(stack.slack.team_id) == []
    assert audit_actions(store, "approval_cancelled") == [ADMIN]
    withdrawn = wait_for(lambda: (m := current(stack, request)) and "Withdrawn" in json.dumps(m.blocks) and m,
                         what="the request to show it was withdrawn")
    assert not has_buttons(withdrawn)

    click(driver, LEADS[1], request, ids.RETRY_APPROVAL_ACTION, value=approval_id)
    assert "already been cancelled" in told(stack, LEADS[1], "already")[0]
    assert run_ids(store) == set() and not [f for f in stack.marketo.fields() if f["name"] in names]
