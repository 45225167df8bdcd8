"""Step 2 through `connect-dynamics serve`: the field search over 400+ attributes, the sync filter
(present, absent, a look-alike) from the modal to the saved plan, refreshing fields from Dynamics,
and a plan that lists the Marketo fields to create without creating any."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bot.models import Entity
from bot.store import Store
from bot.views import ids
from sandbox.driver import SlackDriver
from sandbox.dynamics import AttrSpec
from sandbox.polling import wait_for
from sandbox.stack import ADMIN, Stack
from sandbox.story import Story

SMALL = {"leads": 30, "contacts": 10, "accounts": 5}
EXTRA = 400
LEAD_SELECT = ids.fields_action_id(Entity.lead)
FIELD_CREATE = "/rest/v1/leads/schema/fields.json"


@pytest.fixture
def stack_options(request: pytest.FixtureRequest) -> dict:
    dynamics = getattr(request, "param", {"extra_attributes": {"lead": EXTRA}})
    return {**SMALL, "dynamics": dynamics}


def _open_fields(driver: SlackDriver, stack: Stack) -> tuple[Story, dict[str, Any]]:
    """Step 1 passed, Continue pressed: the Step 2 modal as the Slack emulator holds it."""
    story = Story(driver, stack.slack, stack.dynamics.url)
    story.open_step1()
    story.enter_credentials()
    assert driver.view_submission(ADMIN, stack.slack.view(story.view_id), {}).status == 200
    return story, _wait_callback(stack, story.view_id, ids.FIELDS_CALLBACK)


def _wait_callback(stack: Stack, view_id: str, callback_id: str) -> dict[str, Any]:
    return wait_for(lambda: (v := stack.slack.view(view_id))["callback_id"] == callback_id and v,
                      timeout=30, what=f"the {callback_id} modal")


def _select(view: dict[str, Any], entity: Entity) -> dict[str, Any]:
    return next(b["element"] for b in view["blocks"] if b.get("block_id") == ids.fields_block_id(entity))


def _state(view: dict[str, Any], extra: dict[Entity, list[dict]] | None = None,
           entities: tuple[Entity, ...] = tuple(Entity)) -> dict[str, Any]:
    """state.values with each entity's (of `entities`) pre-selected options, plus `extra` options per entity."""
    values = {}
    for entity in entities:
        element = _select(view, entity)
        chosen = (element.get("initial_options") or []) + (extra or {}).get(entity, [])
        values[ids.fields_block_id(entity)] = {element["action_id"]: {
            "type": "multi_external_select", "selected_options": chosen}}
    return values


def _text(view: dict[str, Any]) -> str:
    return json.dumps(view["blocks"], ensure_ascii=False)


def _search(driver: SlackDriver, view: dict[str, Any], query: str) -> list[dict[str, Any]]:
    answer = driver.block_suggestion(ADMIN, LEAD_SELECT, query, view)
    assert answer.status == 200
    assert answer.elapsed < 3.0, f"search {query!r} acked in {answer.elapsed:.2f}s"
    options = answer.json["options"]
    assert len(options) <= 100
    assert all(len(o["text"]["text"]) <= 75 and o["value"] for o in options)
    return options


def _submit_fields(driver: SlackDriver, stack: Stack, story: Story, values: dict) -> dict[str, Any]:
    response = driver.view_submission(ADMIN, stack.slack.view(story.view_id), values)
    assert response.status == 200 and response.json.get("response_action") == "update", response.text
    return _wait_callback(stack, story.view_id, ids.PLAN_CALLBACK)


# -- search ---------------------------------------------------------------------------------------------


def test_field_search_over_400_attributes_is_fast_capped_and_best_first(driver: SlackDriver, stack: Stack) -> None:
    _, view = _open_fields(driver, stack)
    lead = _select(view, Entity.lead)
    assert lead["type"] == "multi_external_select"
    searchable = int(lead["placeholder"]["text"].split()[1].replace(",", ""))
    assert searchable > EXTRA, "the placeholder counts every attribute there is to search"

    empty = _search(driver, view, "")
    assert len(empty) == 100, "more than 100 attributes: the list is full, never empty"
    preselected = [o["value"] for o in lead["initial_options"]]
    assert {o["value"] for o in empty[:len(preselected)]} == set(preselected), "Marketo's defaults come first"

    extra = _search(driver, view, "extra")
    assert len(extra) == 100 and all(o["value"].startswith("new_extra") for o in extra)

    exact = _search(driver, view, "Extra Field 123")
    assert exact[0]["value"] == "new_extra123"
    assert exact[0]["text"]["text"] == "Extra Field 123 (new_extra123)"
    assert {o["value"] for o in exact} >= {"new_extra123"}

    by_logical = _search(driver, view, "new_extra05")
    assert sorted(o["value"] for o in by_logical) == [f"new_extra05{d}" for d in range(10)]
    unlabelled = next(o for o in by_logical if o["value"] == "new_extra050")  # no display name in Dynamics
    assert "new_extra050" in unlabelled["text"]["text"]

    job = _search(driver, view, "job")
    assert job[0]["value"] == "jobtitle"
    assert _search(driver, view, "no such field zzz") == []


# -- the sync filter: modal text and the saved plan -------------------------------------------------------

FILTER_CASES = [
    pytest.param({"sync_filter": {"lead": "new_synctomkto"}}, "Sync filter detected on lead", "new_synctomkto",
                 id="present"),
    pytest.param({"sync_filter": {}}, "No sync filter (new_synctomkto) on lead", None, id="absent"),
    pytest.param({"sync_filter": {"lead": "new_synctomarketo"}}, "looks like a sync filter but is not used", None,
                 id="lookalike"),
]


@pytest.mark.parametrize(("stack_options", "modal_text", "filter_attribute"), FILTER_CASES,
                         indirect=["stack_options"])
def test_sync_filter_shows_in_the_modal_and_the_plan(
    driver: SlackDriver, stack: Stack, store: Store, modal_text: str, filter_attribute: str | None,
) -> None:
    story, view = _open_fields(driver, stack)
    assert modal_text in _text(view)
    plan_view = _submit_fields(driver, stack, story, _state(view))
    lead_plan = store.active_connection(stack.slack.team_id).plan.for_entity(Entity.lead)
    assert lead_plan.filter_attribute == filter_attribute
    expected = f"filter `{filter_attribute}` applied" if filter_attribute else "no filter (every record)"
    lead_line = next(line for line in _text(plan_view).split("\\n") if "*Leads*" in line)
    assert expected in lead_line, lead_line
    filtered = sum(1 for _ in stack.dynamics.expected_records("lead", []))
    assert f"{filtered} records" in lead_line, lead_line


# -- refresh, then the plan for a custom field found by search ----------------------------------------------


def test_refresh_rereads_metadata_keeps_selection_and_plan_creates_nothing(
    driver: SlackDriver, stack: Stack, store: Store,
) -> None:
    story, view = _open_fields(driver, stack)
    custom = _search(driver, view, "Extra Field 007")[0]
    assert custom["value"] == "new_extra007"
    assert not _search(driver, view, "Added Later")

    stack.dynamics.attributes("lead").append(
        AttrSpec("new_addedlater", "Added Later", "StringType", format="Text", custom=True))
    requests_before, updates_before = stack.dynamics.requests, len(stack.slack.calls("views.update"))
    state = _state(view, {Entity.lead: [custom]})
    refresh = next(e for b in view["blocks"] if b["type"] == "actions" for e in b["elements"]
                   if e["action_id"] == ids.REFRESH_FIELDS_ACTION)
    response = driver.block_action(ADMIN, ids.REFRESH_FIELDS_ACTION, value=refresh["value"],
                                   view={**view, "state": {"values": state}})
    assert response.status == 200 and response.elapsed < 3.0
    wait_for(lambda: len(stack.slack.calls("views.update")) > updates_before, what="the refreshed fields modal")
    assert stack.dynamics.requests > requests_before, "refresh reads metadata from Dynamics again"
    refreshed = _wait_callback(stack, story.view_id, ids.FIELDS_CALLBACK)
    kept = [o["value"] for o in _select(refreshed, Entity.lead)["initial_options"]]
    assert kept == [o["value"] for o in state[ids.fields_block_id(Entity.lead)][LEAD_SELECT]["selected_options"]]
    assert [o["value"] for o in _search(driver, refreshed, "Added Later")] == ["new_addedlater"]

    fields_before = stack.marketo.fields()
    plan_view = _submit_fields(driver, stack, story, _state(refreshed))
    plan = store.active_connection(stack.slack.team_id).plan
    to_create = {f.name: f.data_type for f in plan.fields_to_create}
    assert to_create["dynLeadNewExtra007"] == "string"
    assert "`dynLeadNewExtra007` (string)" in _text(plan_view)
    assert "cannot be deleted" in _text(plan_view)
    assert not [c for c in stack.marketo.calls(FIELD_CREATE) if c.method == "POST"], "no field before approval"
    assert stack.marketo.fields() == fields_before
