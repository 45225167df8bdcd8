"""A change of the field selection after go-live: what it adds and removes, per entity, against the
plan in force. Added columns are backfilled into existing records; removed ones stop syncing (nothing is
deleted in Marketo); a kept column whose direction or collision winner changes is a change too."""

from __future__ import annotations

from bot.errors import FlowError
from bot.models import DirectionChange, FieldPlan, FieldsChange
from bot.views.kit import ENTITY_PLURAL


def plan_change(current: FieldPlan, proposed: FieldPlan) -> FieldsChange:
    """Added, removed and redirected columns per entity (with the added ones' directions). An entity the connection does not sync yet cannot be added
    this way (its records are not in Marketo: that needs a full sync)."""
    new = [ep.entity for ep in proposed.entities if current.for_entity(ep.entity) is None]
    if new:
        names = ", ".join(ENTITY_PLURAL[entity] for entity in new)
        raise FlowError(f"{names} are not synced yet; a change of fields adds columns to the entities already "
                        "synced. Leave them empty here.")
    change = FieldsChange(fields_to_create=proposed.fields_to_create)
    for before in current.entities:
        after = proposed.for_entity(before.entity)
        old = [m.source for m in before.mappings]
        now = [m.source for m in after.mappings] if after else []
        change.added[before.entity.value] = [n for n in now if n not in old]
        change.removed[before.entity.value] = [n for n in old if n not in now]
        was = {m.source: m for m in before.mappings}
        change.directions[before.entity.value] = [
            DirectionChange(before=was.get(m.source), after=m) for m in (after.mappings if after else [])
            if m.source not in was or (m.direction, m.winner) != (was[m.source].direction, was[m.source].winner)]
    return change
