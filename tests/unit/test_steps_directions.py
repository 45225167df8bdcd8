"""Step 2's Directions… modal without Slack, over a real Redis store: it lists what the picker holds now,
saves the choices on the connection, refuses a clash inline, and a change of fields carries directions."""

from __future__ import annotations

import pytest

from bot import flow
from bot.dynamics.metadata import MetadataCache
from bot.errors import FlowError
from bot.models import (
    AttributeMeta,
    Direction,
    Entity,
    EntityMetadata,
    EntityPlan,
    FieldMapping,
    FieldPlan,
    Side,
)
from bot.steps import fields
from bot.store import Store
from bot.sync.directions import DirectionChoices
from bot.sync.fields_change import plan_change
from bot.views import ids
from bot.views.fields import change_plan_modal
from tests.support.connections import at_confirm, at_fields, synced

TEAM, ADMIN = "T1", "UADMIN"


class Source:
    def entity_metadata(self, entity: Entity | str) -> EntityMetadata:
        entity = Entity(entity)
        attrs = [AttributeMeta(logical_name=n, display_name=n.title(), attribute_type="StringType")
                 for n in ("firstname", "jobtitle")]
        attrs.append(AttributeMeta(logical_name="fullname", display_name="Full Name", attribute_type="StringType",
                                   valid_for_update=False))
        return EntityMetadata(entity=entity, entity_set=entity.entity_set, primary_id=entity.primary_id,
                              attributes=attrs)


@pytest.fixture
def cache(store: Store) -> MetadataCache:
    return MetadataCache(store)


def test_the_modal_lists_the_pickers_fields_and_the_choices_are_saved(store: Store, cache: MetadataCache) -> None:
    connection = at_fields(store, TEAM, ADMIN)
    with pytest.raises(FlowError, match="Refresh fields"):
        fields.directions_view(store, cache, TEAM, connection.id, {"lead": ["firstname"]})
    for entity in (Entity.lead, Entity.contact):
        cache.get(TEAM, connection.id, Source(), entity)
    view = fields.directions_view(store, cache, TEAM, connection.id,
                                  {"lead": ["firstname", "jobtitle", "fullname"], "contact": []}).to_dict()
    offered = {b["block_id"]: [o["value"] for o in b["element"]["options"]] for b in view["blocks"]
               if b["type"] == "input"}
    assert offered == {ids.direction_block_id(Entity.lead, w): ["firstname", "jobtitle"] for w in ids.DIRECTION_INPUTS}
    errors = fields.choose_directions(store, TEAM, ADMIN, connection.id, {Entity.lead: DirectionChoices(
        to_marketo=["jobtitle"], to_dynamics=["jobtitle"])})
    assert list(errors) == [ids.direction_block_id(Entity.lead, "to_dynamics")] and "jobtitle" in errors[
        ids.direction_block_id(Entity.lead, "to_dynamics")]
    assert store.get_connection(TEAM, connection.id).directions == {}  # type: ignore[union-attr]
    assert fields.choose_directions(store, TEAM, ADMIN, connection.id, {Entity.lead: DirectionChoices(
        to_marketo=["jobtitle"], other_wins=["firstname"])}) == {}
    saved = store.get_connection(TEAM, connection.id)
    assert saved is not None and saved.state.value == "fields"
    assert saved.directions == {"lead": {"jobtitle": Direction.to_marketo}}
    assert saved.winners == {"lead": {"firstname": Side.dynamics}}
    again = fields.directions_view(store, cache, TEAM, connection.id, {"lead": ["firstname", "jobtitle"]}).to_dict()
    initial = {b["block_id"]: [o["value"] for o in b["element"].get("initial_options") or []]
               for b in again["blocks"] if b["type"] == "input"}
    assert initial[ids.direction_block_id(Entity.lead, "to_marketo")] == ["jobtitle"]
    assert initial[ids.direction_block_id(Entity.lead, "winner")] == ["firstname"]


def test_new_directions_invalidate_a_saved_plan(store: Store) -> None:
    connection = at_confirm(store, TEAM, ADMIN)
    fields.choose_directions(store, TEAM, ADMIN, connection.id, {Entity.lead: DirectionChoices(to_marketo=["x"])})
    saved = store.get_connection(TEAM, connection.id)
    assert saved is not None and saved.plan is None and saved.state.value == "fields"


def _mapping(source: str, direction: Direction, winner: Side | None = None) -> FieldMapping:
    return FieldMapping(source=source, read_name=source, attribute_type="StringType", marketo_name=source,
                        marketo_type="string", standard=False, direction=direction, winner=winner)


def test_a_change_of_direction_alone_is_a_change_of_fields(store: Store) -> None:
    before = FieldPlan(entities=[EntityPlan(entity=Entity.lead, id_field="dynamicsLeadId", mappings=[
        _mapping("firstname", Direction.both), _mapping("jobtitle", Direction.both)])])
    after = FieldPlan(entities=[EntityPlan(entity=Entity.lead, id_field="dynamicsLeadId", mappings=[
        _mapping("firstname", Direction.both, Side.dynamics), _mapping("jobtitle", Direction.to_marketo)])])
    change = plan_change(before, after)
    assert not change.empty and not change.backfill_fields()
    assert [d.after.source for d in change.directions["lead"]] == ["firstname", "jobtitle"]
    text = str(change_plan_modal("c1", change).to_dict())
    assert "`jobtitle` → Marketo (was ⇄ both ways)" in text
    assert "`firstname` ⇄ both ways, Dynamics wins (was ⇄ both ways)" in text
    assert plan_change(after, after).empty
    grown = after.model_copy(deep=True)
    grown.entities[0].mappings.append(_mapping("new_region", Direction.to_dynamics))
    added = plan_change(after, grown)
    assert added.added == {"lead": ["new_region"]} and added.backfill_fields() == {"lead": ["new_region"]}
    assert "new: `new_region` ← Dynamics (written into existing records" in str(change_plan_modal("c1", added).to_dict())


def test_a_change_of_fields_starts_from_the_directions_in_force(store: Store) -> None:
    connection = synced(store, at_fields(store, TEAM, ADMIN), ADMIN)
    in_force = FieldPlan(entities=[EntityPlan(entity=Entity.lead, id_field="dynamicsLeadId", mappings=[
        _mapping("jobtitle", Direction.to_marketo), _mapping("firstname", Direction.both, Side.dynamics)])])
    store.update_connection(TEAM, connection.id, lambda c: c.model_copy(update={"plan": in_force}))
    fields.choose_directions(store, TEAM, ADMIN, connection.id, {Entity.lead: DirectionChoices(to_dynamics=["x"])})
    assert store.get_connection(TEAM, connection.id).directions == {  # type: ignore[union-attr]
        "lead": {"x": Direction.to_dynamics}}
    restored = flow.restore_choices(store, TEAM, connection.id, in_force)
    assert restored.directions == {"lead": {"jobtitle": Direction.to_marketo}}
    assert restored.winners == {"lead": {"firstname": Side.dynamics}} and restored.state.value == "synced"
