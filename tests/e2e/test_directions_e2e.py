"""Step 2's directions through `connect-dynamics serve`: the Directions… modal pushed over the field picker
(signed Slack requests into the running server, the Slack emulator holding the views), a refused choice,
and the chosen directions in the plan, in Redis and in the team lead's approval request."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bot.models import Direction, Entity, Side
from bot.store import Store
from bot.views import ids
from sandbox.driver import SlackDriver
from sandbox.polling import wait_for
from sandbox.stack import ADMIN, APPROVAL_CHANNEL, LEADS, Stack
from sandbox.story import Story
from tests.e2e.test_fields_e2e import _open_fields, _state, _submit_fields, _text

LEAD = Entity.lead


@pytest.fixture
def stack_options() -> dict:
    return {"leads": 20, "contacts": 10, "accounts": 5}


def _find(driver: SlackDriver, view: dict[str, Any], query: str) -> dict[str, Any]:
    answer = driver.block_suggestion(ADMIN, ids.fields_action_id(LEAD), query, view)
    return answer.json["options"][0]


def _push_directions(driver: SlackDriver, stack: Stack, view: dict[str, Any], state: dict) -> dict[str, Any]:
    response = driver.block_action(ADMIN, ids.DIRECTIONS_ACTION, value=json.loads(view["private_metadata"])[
        "connection_id"], view={**view, "state": {"values": state}})
    assert response.status == 200 and response.elapsed < 3.0
    return wait_for(lambda: len(s := stack.slack.view_stack(ADMIN)) == 2 and s[-1], timeout=30,
                    what="the directions modal pushed over the picker")


def _options(view: dict[str, Any], which: str) -> dict[str, dict]:
    block = next(b for b in view["blocks"] if b.get("block_id") == ids.direction_block_id(LEAD, which))
    return {o["value"]: o for o in block["element"]["options"]}


def _values(view: dict[str, Any], **chosen: list[str]) -> dict[str, Any]:
    values = {}
    for which in ids.DIRECTION_INPUTS:
        options = _options(view, which)
        values[ids.direction_block_id(LEAD, which)] = {ids.direction_action_id(LEAD, which): {
            "type": "multi_static_select", "selected_options": [options[n] for n in chosen.get(which, [])]}}
    return values


def test_directions_chosen_in_step2_reach_the_plan_and_the_approval(
    driver: SlackDriver, stack: Stack, store: Store,
) -> None:
    story, view = _open_fields(driver, stack)
    state = _state(view, {LEAD: [_find(driver, view, "Full Name"), _find(driver, view, "Days Open")]})

    pushed = _push_directions(driver, stack, view, state)
    assert pushed["callback_id"] == ids.DIRECTIONS_CALLBACK
    offered = _options(pushed, "to_dynamics")
    assert "jobtitle" in offered and not {"fullname", "new_daysopen"} & set(offered), "Marketo cannot write them"
    text = _text(pushed)
    assert "`fullname` (read-only in Dynamics)" in text and "`new_daysopen` (calculated in Dynamics)" in text

    refused = driver.view_submission(ADMIN, pushed, _values(pushed, to_marketo=["jobtitle"], to_dynamics=["jobtitle"]))
    assert refused.json["response_action"] == "errors"
    assert "jobtitle" in refused.json["errors"][ids.direction_block_id(LEAD, "to_dynamics")]
    assert len(stack.slack.view_stack(ADMIN)) == 2, "a refused choice keeps the modal open"

    saved = driver.view_submission(ADMIN, pushed, _values(pushed, to_marketo=["jobtitle"], winner=["firstname"]))
    assert saved.status == 200 and not (saved.json or {}).get("response_action")
    assert len(stack.slack.view_stack(ADMIN)) == 1, "Save returns to the field picker"

    plan_view = _submit_fields(driver, stack, story, state)
    lead_plan = store.active_connection(stack.slack.team_id).plan.for_entity(LEAD)
    mappings = {m.source: m for m in lead_plan.mappings}
    assert mappings["jobtitle"].direction == Direction.to_marketo
    assert mappings["firstname"].direction == Direction.both and mappings["firstname"].winner == Side.dynamics
    assert mappings["emailaddress1"].direction == Direction.both
    assert mappings["fullname"].one_way_reason == "read-only in Dynamics"
    shown = _text(plan_view)
    for line in ("`jobtitle` → Marketo", "`firstname` ⇄ both ways, Dynamics wins",
                 "`new_daysopen` → Marketo (calculated in Dynamics)", "collisions: Marketo wins"):
        assert line in shown, line

    request = story.begin_sync()
    assert len(request.blocks) <= 50
    approval_text = json.dumps(request.blocks, ensure_ascii=False)
    assert "*Directions*" in approval_text and "`jobtitle` → Marketo" in approval_text
    assert "`firstname` ⇄ both ways, Dynamics wins" in approval_text
    assert "*Contacts*" in approval_text and "collisions: Dynamics wins" in approval_text


def test_a_direction_changed_after_go_live_is_a_change_of_fields_a_lead_approves(
    driver: SlackDriver, worker: object, stack: Stack, store: Store,
) -> None:
    story = Story(driver, stack.slack, stack.dynamics.url)
    story.go_live(timeout=240)
    team = stack.slack.team_id
    before = {m.source: m for m in store.active_connection(team).plan.for_entity(LEAD).mappings}
    assert before["jobtitle"].direction == Direction.both

    assert driver.command(ADMIN, text="fields").status == 200
    opened = stack.slack.wait_for("views.open", lambda call: call.response["view"]["id"] != story.view_id, 30)
    story.view_id = opened.response["view"]["id"]
    picker = wait_for(lambda: (v := story._view()).get("callback_id") == ids.FIELDS_CHANGE_CALLBACK and v,
                      "the field picker of the change", 60)
    state = _state(picker)
    pushed = _push_directions(driver, stack, picker, state)
    assert not any(b["element"].get("initial_options") for b in pushed["blocks"] if b["type"] == "input"), \
        "the plan in force syncs every field both ways by the rule"
    assert driver.view_submission(ADMIN, pushed, _values(pushed, to_marketo=["jobtitle"])).status == 200

    story._submit(state)
    change = wait_for(lambda: (v := story._view()).get("callback_id") == ids.FIELDS_CHANGE_PLAN_CALLBACK and v,
                      "the plan of the change", 60)
    assert "`jobtitle` → Marketo (was ⇄ both ways)" in _text(change)
    story._submit({})
    request = wait_for(lambda: [m for m in stack.slack.messages(APPROVAL_CHANNEL) if "Change of fields" in m.text],
                       "the change request", 60)[-1]
    assert "`jobtitle` → Marketo (was ⇄ both ways)" in json.dumps(request.blocks, ensure_ascii=False)
    approval_id = next(e["value"] for b in request.blocks if b.get("type") == "actions"
                       for e in b["elements"] if e["action_id"] == ids.APPROVE_ACTION)
    assert driver.block_action(LEADS[0], ids.APPROVE_ACTION, value=approval_id, message=request).status == 200

    def switched() -> bool:
        plan = store.active_connection(team).plan
        return any(m.source == "jobtitle" and m.direction == Direction.to_marketo
                   for m in plan.for_entity(LEAD).mappings)

    wait_for(switched, "the plan in force to sync jobtitle one way", 60)
    connection = store.active_connection(team)
    assert connection.backfill_run_id is None, "a change of direction alone writes nothing to backfill"
    assert connection.state.value == "synced"
