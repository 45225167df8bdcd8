"""A change of the field selection after go-live: what it adds and removes, per entity, against the
plan in force. Added columns are backfilled into existing records; removed ones stop syncing (nothing is
deleted in Marketo); a kept column whose direction or collision winner changes is a change too. Custom
tables may be added (their custom object types are made after approval and their records read in full) or
removed (syncing stops; the custom object and its records stay in Marketo)."""

from __future__ import annotations

from bot.custom_object_models import CustomObjectChange
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
    _custom_change(current, proposed, change)
    return change


def _custom_change(current: FieldPlan, proposed: FieldPlan, change: FieldsChange) -> None:
    """The custom tables added, removed, and kept with other columns."""
    before = {o.table: o for o in current.custom_objects}
    after = {o.table: o for o in proposed.custom_objects}
    change.objects_added = [o for table, o in after.items() if table not in before]
    change.objects_removed = [o for table, o in before.items() if table not in after]
    change.objects_refused = proposed.custom_refused
    for table, now in after.items():
        if table in before:
            old, new = [f.source for f in before[table].fields], [f.source for f in now.fields]
            added, removed = [n for n in new if n not in old], [n for n in old if n not in new]
            if added or removed:
                change.objects_changed.append(CustomObjectChange(plan=now, added=added, removed=removed))
