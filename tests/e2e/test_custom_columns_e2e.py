"""Step 2's custom-table columns through `connect-dynamics serve`: Columns… pushes a modal over the field
picker for the tables picked in it (signed Slack requests into the running server, the Slack emulator
holding the views), the choice is saved, and the plan's custom object has only the chosen columns."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bot.store import Store
from bot.views import ids
from sandbox.driver import SlackDriver
from sandbox.polling import wait_for
from sandbox.stack import ADMIN, Stack
from tests.e2e.test_fields_e2e import _open_fields, _state, _submit_fields, _text

PROJECT = "new_project"
CHOSEN = ["new_budget", "new_name"]


@pytest.fixture
def stack_options() -> dict:
    return {"leads": 10, "contacts": 10, "accounts": 5}


def _input(view: dict[str, Any], block_id: str) -> dict[str, Any]:
    return next(b["element"] for b in view["blocks"] if b.get("block_id") == block_id)


def test_columns_chosen_for_a_custom_table_are_its_custom_objects_only_fields(
    driver: SlackDriver, stack: Stack, store: Store,
) -> None:
    story, view = _open_fields(driver, stack)
    tables = _input(view, ids.CUSTOM_TABLES_BLOCK)
    project = next(o for o in tables["options"] if o["value"] == PROJECT)
    state = {**_state(view), ids.CUSTOM_TABLES_BLOCK: {ids.CUSTOM_TABLES_ACTION: {
        "type": "multi_static_select", "selected_options": [project]}}}

    response = driver.block_action(ADMIN, ids.COLUMNS_ACTION, value=json.loads(view["private_metadata"])[
        "connection_id"], view={**view, "state": {"values": state}})
    assert response.status == 200 and response.elapsed < 3.0
    pushed = wait_for(lambda: len(s := stack.slack.view_stack(ADMIN)) == 2 and s[-1]["callback_id"] == ids.COLUMNS_CALLBACK
                      and s[-1], timeout=30, what="the columns modal pushed over the picker")
    element = _input(pushed, ids.columns_block_id(PROJECT))
    offered = {o["value"]: o for o in element["options"]}
    assert set(CHOSEN) <= set(offered) and "new_contactid" not in offered, "the person link is not a column"
    assert {o["value"] for o in element["initial_options"]} == set(offered), "never chosen: every column"
    assert ids.columns_block_id("new_projectnote") not in _text(pushed), "only the tables picked now"

    saved = driver.view_submission(ADMIN, pushed, {ids.columns_block_id(PROJECT): {element["action_id"]: {
        "type": "multi_static_select", "selected_options": [offered[name] for name in CHOSEN]}}})
    assert saved.status == 200 and not (saved.json or {}).get("response_action")
    assert len(stack.slack.view_stack(ADMIN)) == 1, "Save returns to the field picker"

    plan_view = _submit_fields(driver, stack, story, state)
    [custom] = store.active_connection(stack.slack.team_id).plan.custom_objects
    assert (custom.table, [f.source for f in custom.fields]) == (PROJECT, CHOSEN)
    shown = _text(plan_view)
    assert "`newBudget`" in shown and "`newName`" in shown and "`newSeats`" not in shown
