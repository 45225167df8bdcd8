"""Step 2 through `connect-dynamics serve` for opportunities: offered one way with standard fields only, and
the plan counts them and their contact roles."""

from __future__ import annotations

import pytest

from bot.models import Direction, Entity
from bot.store import Store
from bot.sync.mapping import OPPORTUNITY_STANDARD_ONLY
from bot.views import ids
from sandbox.driver import SlackDriver
from sandbox.stack import Stack
from tests.e2e.test_fields_e2e import _open_fields, _select, _state, _submit_fields, _text

OPPORTUNITIES = 12


@pytest.fixture
def stack_options() -> dict:
    return {"leads": 10, "contacts": 10, "accounts": 5, "opportunities": OPPORTUNITIES}


def test_opportunities_are_offered_one_way_and_the_plan_counts_their_roles(
    driver: SlackDriver, stack: Stack, store: Store,
) -> None:
    story, view = _open_fields(driver, stack)
    picker = _select(view, Entity.opportunity)
    assert {o["value"] for o in picker["initial_options"]} >= {"name", "estimatedvalue"}
    assert OPPORTUNITY_STANDARD_ONLY.split(":")[0] in _text(view)

    plan_view = _submit_fields(driver, stack, story, _state(view))
    plan = store.active_connection(stack.slack.team_id).plan.for_entity(Entity.opportunity)
    assert plan is not None and plan.filter_attribute == "new_synctomkto"
    assert {m.direction for m in plan.mappings} == {Direction.to_marketo}
    line = next(line for line in _text(plan_view).split("\\n") if "*Opportunities*" in line)
    passing = {r["opportunityid"] for r in stack.dynamics.expected_records("opportunity", [])}
    roles = sum(1 for c in stack.dynamics.expected_records("connection", ["_record1id_value"])
                if c["_record1id_value"] in passing)
    assert roles < 2 * OPPORTUNITIES  # the roles of opportunities the filter leaves out are not counted
    assert f"Marketo opportunities (+ {roles} contact roles)" in line, line
    assert f"{len(passing)} records" in line and "filter `new_synctomkto` applied" in line, line


@pytest.mark.parametrize("stack_options", [{"leads": 10, "contacts": 10, "accounts": 5,
                                            "dynamics": {"absent_tables": {"opportunity", "connection"}}}])
def test_an_org_without_opportunities_is_not_offered_them(driver: SlackDriver, stack: Stack, store: Store) -> None:
    story, view = _open_fields(driver, stack)
    assert ids.fields_block_id(Entity.opportunity) not in {b.get("block_id") for b in view["blocks"]}
    assert ids.fields_block_id(Entity.lead) in {b.get("block_id") for b in view["blocks"]}
    _submit_fields(driver, stack, story, _state(view, entities=(Entity.lead, Entity.contact, Entity.account)))
    plan = store.active_connection(stack.slack.team_id).plan
    assert plan.for_entity(Entity.opportunity) is None and plan.for_entity(Entity.lead) is not None
