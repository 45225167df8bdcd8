"""The Dataverse client reads what makes a field one way (IsValidForUpdate, SourceType) from the emulator's
metadata, and the plan built from it says why Marketo cannot write those fields."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from bot.dynamics.client import DataverseClient
from bot.models import Direction, Entity
from bot.sync.mapping import build_plan
from sandbox.dynamics import DynamicsEmulator


@pytest.fixture
def emulator(start_dynamics: Callable[..., DynamicsEmulator]) -> DynamicsEmulator:
    return start_dynamics(records={"lead": 5, "contact": 5, "account": 2})


def test_read_only_calculated_and_rollup_columns_are_read_and_planned_one_way(client: DataverseClient) -> None:
    lead, contact = client.entity_metadata(Entity.lead), client.entity_metadata(Entity.contact)
    by_name = {a.logical_name: a for a in lead.attributes}
    assert not by_name["fullname"].valid_for_update and by_name["fullname"].source_type == 0
    assert not by_name["new_daysopen"].valid_for_update and by_name["new_daysopen"].source_type == 1
    assert by_name["firstname"].valid_for_update
    assert contact.attribute("new_opendeals").source_type == 2  # type: ignore[union-attr]
    selected = {Entity.lead: ["firstname", "fullname", "new_daysopen"], Entity.contact: ["new_opendeals"]}
    plan = build_plan({Entity.lead: lead, Entity.contact: contact}, selected, set())
    mappings = {(ep.entity, m.source): m for ep in plan.entities for m in ep.mappings}
    assert mappings[(Entity.lead, "firstname")].direction == Direction.both
    assert mappings[(Entity.lead, "fullname")].one_way_reason == "read-only in Dynamics"
    assert mappings[(Entity.lead, "new_daysopen")].one_way_reason == "calculated in Dynamics"
    assert mappings[(Entity.contact, "new_opendeals")].one_way_reason == "a rollup in Dynamics"
    assert all(m.direction == Direction.to_marketo for m in mappings.values() if m.one_way_reason)
