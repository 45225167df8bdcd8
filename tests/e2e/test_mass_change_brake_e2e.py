"""The mass-change brake end to end: `serve` and `worker` as real processes, real Redis, the emulators,
signed requests. Ten leads deleted in Dynamics with MASS_CHANGE_LIMIT=5: the cycle holds and asks the
leads; Discard leaves the persons unmarked and later changes flow, Approve marks them deleted."""

from __future__ import annotations

import pytest

from bot.models import Entity
from bot.store import Store
from bot.views import ids
from sandbox.polling import wait_for
from sandbox.slack import PostedMessage
from sandbox.stack import ADMIN, APPROVAL_CHANNEL, LEADS, Stack
from sandbox.story import Story
from tests.conftest import REDIS_URL

HELD = "Mass change held"


@pytest.fixture
def stack_options() -> dict:
    return {"leads": 60, "contacts": 20, "accounts": 10}


@pytest.fixture
def bot_env(stack: Stack, key_prefix: str) -> dict[str, str]:
    return stack.env(REDIS_URL=REDIS_URL, REDIS_KEY_PREFIX=key_prefix, MASS_CHANGE_LIMIT=5,
                     INCREMENTAL_SYNC_MINUTES=0.02, SYNC_SWEEP_SECONDS=0.5)


def _synced_lead_indices(stack: Stack, n: int) -> list[int]:
    """Indices of leads the initial sync wrote to Marketo (the sync filter leaves some out)."""
    in_marketo = {row.get("dynamicsLeadId") for row in stack.marketo.leads()}
    return [i for i in range(60) if stack.dynamics.record_id("lead", i) in in_marketo][:n]


def _person(stack: Stack, index: int) -> dict:
    return stack.marketo.lead_by("dynamicsLeadId", stack.dynamics.record_id("lead", index))


def _held_request(stack: Stack) -> PostedMessage:
    return wait_for(lambda: [m for m in stack.slack.messages(APPROVAL_CHANNEL) if m.text.startswith(HELD)],
                    "the mass-change request", 90)[-1]


@pytest.mark.parametrize("decision", ["discard", "approve"])
def test_ten_deletes_are_held_for_a_team_lead(decision: str, driver, worker, stack: Stack,  # noqa: ANN001
                                              store: Store) -> None:
    story = Story(driver, stack.slack, stack.dynamics.url)
    story.go_live(timeout=240)
    connection = store.active_connection(stack.slack.team_id)
    *deleted, later = _synced_lead_indices(stack, 11)
    for index in deleted:
        stack.dynamics.delete_record("lead", index)

    request = _held_request(stack)
    assert "10" in request.text
    assert "held: waiting for a team lead" in driver.command(ADMIN, text="status").text
    assert not any(_person(stack, i).get("dynamicsDeleted") for i in deleted)
    action = ids.BRAKE_DISCARD_ACTION if decision == "discard" else ids.BRAKE_APPROVE_ACTION
    value = next(e["value"] for b in request.blocks if b.get("type") == "actions"
                 for e in b["elements"] if e["action_id"] == action)
    assert driver.block_action(LEADS[1], action, value=value, message=request).status == 200

    wait_for(lambda: store.holds.get(connection.team_id, connection.id, Entity.lead.value) is None,
             "the next cycle to apply the decision", 60)
    decided = stack.slack.message(request.channel, request.ts)
    assert f"<@{LEADS[1]}>" in str(decided.blocks)
    if decision == "discard":
        assert not any(_person(stack, i).get("dynamicsDeleted") for i in deleted)
        stack.dynamics.update_record("lead", later, firstname="AfterDiscard")
        wait_for(lambda: _person(stack, later)["firstName"] == "AfterDiscard", "a later change to flow", 60)
    else:
        assert all(_person(stack, i).get("dynamicsDeleted") for i in deleted)
