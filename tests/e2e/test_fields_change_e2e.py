"""Fields added after go-live, end to end: `serve` and `worker` as real processes, real Redis, the
emulators, signed requests. After the initial sync `/connect-dynamics fields` adds a lead field; the plan
shows it as new, a lead approves, the Marketo field is created and the backfill writes its values into the
existing persons (creating none), while a change made meanwhile in Dynamics arrives too."""

from __future__ import annotations

import json

import pytest

from bot.models import Entity, RunStatus
from bot.store import Store
from bot.views import ids
from sandbox.driver import SlackDriver
from sandbox.polling import wait_for
from sandbox.stack import ADMIN, APPROVAL_CHANNEL, LEADS, Stack
from sandbox.story import Story
from tests.conftest import REDIS_URL


@pytest.fixture
def stack_options() -> dict:
    return {"leads": 120, "contacts": 30, "accounts": 10}


@pytest.fixture
def bot_env(stack: Stack, key_prefix: str) -> dict[str, str]:
    return stack.env(REDIS_URL=REDIS_URL, REDIS_KEY_PREFIX=key_prefix, INCREMENTAL_SYNC_MINUTES=0.02,
                     SYNC_SWEEP_SECONDS=0.5)


def _picker_values(view: dict, add: dict[str, dict]) -> dict:
    """The picker as submitted: the current selection, plus `add` (action id -> option) chosen."""
    values = {}
    for block in view["blocks"]:
        element = block.get("element") or {}
        if element.get("type") == "multi_external_select":
            chosen = list(element.get("initial_options") or [])
            if element["action_id"] in add:
                chosen.append(add[element["action_id"]])
            values[block["block_id"]] = {element["action_id"]: {"type": "multi_external_select",
                                                                  "selected_options": chosen}}
    return values


def _open_change(driver: SlackDriver, stack: Stack, story: Story) -> dict:
    """`/connect-dynamics fields` after go-live: the change modal (the story follows it) with the current selection."""
    assert driver.command(ADMIN, text="fields").status == 200
    opened = stack.slack.wait_for("views.open", lambda call: call.response["view"]["id"] != story.view_id, 30)
    story.view_id = opened.response["view"]["id"]
    return wait_for(lambda: (v := story._view()).get("callback_id") == ids.FIELDS_CHANGE_CALLBACK and v,
                    "the field picker with the current selection", 60)


def test_a_field_added_after_go_live_is_backfilled(driver, worker, stack: Stack, store: Store) -> None:  # noqa: ANN001
    story = Story(driver, stack.slack, stack.dynamics.url)
    story.go_live(timeout=240)
    team = stack.slack.team_id
    before = store.active_connection(team)
    persons = stack.marketo.lead_count()

    picker = _open_change(driver, stack, story)
    lead_action = ids.fields_action_id(Entity.lead)
    selected = {o["value"] for b in picker["blocks"] if (b.get("element") or {}).get("action_id") == lead_action
                for o in b["element"].get("initial_options") or []}
    assert selected == set(before.selected["lead"])
    options = driver.block_suggestion(ADMIN, lead_action, "new_extra", picker).json["options"]
    added = next(o for o in options if o["value"] not in selected)
    story._submit(_picker_values(picker, {lead_action: added}))
    plan = wait_for(lambda: (v := story._view()).get("callback_id") == ids.FIELDS_CHANGE_PLAN_CALLBACK and v,
                    "the plan of the change", 60)
    shown = json.dumps(plan["blocks"])
    assert added["value"] in shown and "(new)" in shown and "Irreversible" in shown
    story._submit({})

    request = wait_for(lambda: [m for m in stack.slack.messages(APPROVAL_CHANNEL) if "Change of fields" in m.text],
                       "the change request", 60)[-1]
    assert added["value"] in json.dumps(request.blocks)
    approval_id = next(e["value"] for b in request.blocks if b.get("type") == "actions"
                       for e in b["elements"] if e["action_id"] == ids.APPROVE_ACTION)
    assert driver.block_action(LEADS[0], ids.APPROVE_ACTION, value=approval_id, message=request).status == 200
    meanwhile = stack.dynamics.record_id("lead", next(i for i in range(120) if stack.marketo.lead_by(
        "dynamicsLeadId", stack.dynamics.record_id("lead", i))))
    index = next(i for i in range(120) if stack.dynamics.record_id("lead", i) == meanwhile)
    stack.dynamics.update_record("lead", index, firstname="Meanwhile")

    connection = wait_for(lambda: (c := store.active_connection(team)).backfill_run_id and c,
                          "the plan switch and the backfill", 60)
    mapping = next(m for m in connection.plan.for_entity(Entity.lead).mappings if m.source == added["value"])
    assert mapping.marketo_name in {f["name"] for f in stack.marketo.fields()}
    run = wait_for(lambda: (r := store.get_run(team, connection.backfill_run_id)) is not None  # saved after the switch
                   and r.status == RunStatus.finished and r, "the backfill to finish", 120)
    assert run.kind == "backfill" and all(p.created == 0 for p in run.entities)
    expected = {rec["leadid"]: rec.get(added["value"])
                for rec in stack.dynamics.expected_records("lead", [added["value"]])}
    assert expected and all(stack.marketo.lead_by("dynamicsLeadId", record_id)[mapping.marketo_name] == value
                            for record_id, value in expected.items())
    assert stack.marketo.lead_count() == persons  # nobody was created
    wait_for(lambda: stack.marketo.lead_by("dynamicsLeadId", meanwhile)["firstName"] == "Meanwhile",
             "the change made meanwhile", 60)
    assert store.active_connection(team).state.value == "synced"
