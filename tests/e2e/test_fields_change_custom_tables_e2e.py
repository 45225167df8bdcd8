"""A custom table added after go-live, end to end: `serve` and `worker` as real processes, real Redis, the
emulators, signed requests. After the initial sync an admin picks a custom table in `/connect-dynamics
fields`, the plan of the change names its custom object, a team lead approves with the button, and the
custom object is made in Marketo with every record of the table written, each linked to its contact."""

from __future__ import annotations

import json

import pytest

from bot.store import Store
from bot.views import ids
from sandbox.driver import SlackDriver
from sandbox.polling import wait_for
from sandbox.stack import APPROVAL_CHANNEL, Stack
from sandbox.story import Story
from tests.e2e.test_fields_change_e2e import _open_change, _picker_values

PROJECT, PROJECTS, CONTACTS, TYPE = "new_project", 25, 20, "dynNewProject"


@pytest.fixture
def stack_options() -> dict:
    records = {"lead": 40, "contact": CONTACTS, "account": 5, "opportunity": 4, "connection": 8, PROJECT: PROJECTS}
    return {"leads": 40, "contacts": CONTACTS, "accounts": 5, "opportunities": 4, "dynamics": {"records": records}}


def test_a_custom_table_added_after_go_live_is_made_in_marketo_and_synced_in_full(
    driver: SlackDriver, worker: object, stack: Stack, store: Store,
) -> None:
    story = Story(driver, stack.slack, stack.dynamics.url)
    story.go_live(timeout=240)
    assert TYPE not in stack.marketo.custom_objects.types

    picker = _open_change(driver, stack, story)
    tables = next(b["element"] for b in picker["blocks"] if b.get("block_id") == ids.CUSTOM_TABLES_BLOCK)
    assert not tables.get("initial_options"), "no custom table synced at go-live"
    project = next(o for o in tables["options"] if o["value"] == PROJECT)
    story._submit({**_picker_values(picker, {}), ids.CUSTOM_TABLES_BLOCK: {ids.CUSTOM_TABLES_ACTION: {
        "type": "multi_static_select", "selected_options": [project]}}})
    plan = wait_for(lambda: (v := story._view()).get("callback_id") == ids.FIELDS_CHANGE_PLAN_CALLBACK and v,
                    "the plan of the change", 60)
    shown = json.dumps(plan["blocks"])
    assert "Custom tables added (1)" in shown and f"`{TYPE}`" in shown
    story._submit({})

    request = wait_for(lambda: [m for m in stack.slack.messages(APPROVAL_CHANNEL) if "Change of fields" in m.text],
                       "the change request", 60)[-1]
    assert TYPE in json.dumps(request.blocks)
    story.approve(request)

    expected = {stack.dynamics.record_id(PROJECT, i): stack.dynamics.record_id("contact", i % CONTACTS)
                for i in range(PROJECTS)}
    objects = stack.marketo.custom_objects
    written = wait_for(lambda: TYPE in objects.types and len(rows := objects.records(TYPE)) == PROJECTS and rows,
                       "every project written to its custom object", 120)
    assert {row["dynNewProjectId"]: row["dynamicsContactId"] for row in written} == expected
    assert objects.types[TYPE].state() == "approved"
    connection = store.active_connection(stack.slack.team_id)
    assert connection.custom_tables == [PROJECT] and connection.state.value == "synced"
