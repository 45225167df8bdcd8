"""How the plan and the approval show which way each field syncs: one summary line per entity, then only
the fields that differ from it (so a long plan stays within a message's blocks)."""

from __future__ import annotations

from bot.models import Direction, Entity, EntityPlan, FieldMapping, FieldPlan, Side
from bot.sync.directions import ENTITY_WINNER, TWO_WAY_ENTITIES
from bot.views.kit import ENTITY_PLURAL, escape, limited_lines

MARKS: dict[Direction, str] = {
    Direction.both: "⇄ both ways",
    Direction.to_marketo: "→ Marketo",
    Direction.to_dynamics: "← Dynamics",
}
SIDE_NAMES: dict[Side, str] = {Side.marketo: "Marketo", Side.dynamics: "Dynamics"}
MAX_EXCEPTIONS = 30  # fields listed per entity beside its summary line; the rest are counted


def rule_text(entity: Entity) -> str:
    return f"{SIDE_NAMES[ENTITY_WINNER[entity]]} wins (Marketo's rule for {ENTITY_PLURAL[entity].lower()})"


def mark(entity: Entity, mapping: FieldMapping) -> str:
    """`⇄ both ways`, `→ Marketo`, `← Dynamics`; the winner when it is not the entity's rule; the reason
    of a field that is one way by necessity."""
    text = MARKS[mapping.direction]
    if mapping.direction == Direction.both and mapping.winner and mapping.winner != ENTITY_WINNER.get(entity):
        text += f", {SIDE_NAMES[mapping.winner]} wins"
    if mapping.one_way_reason:
        text += f" ({escape(mapping.one_way_reason)})"
    return text


def _is_exception(entity: Entity, mapping: FieldMapping) -> bool:
    return mapping.direction != Direction.both or (mapping.winner not in (None, ENTITY_WINNER[entity]))


def _entity_direction_lines(ep: EntityPlan, limit: int) -> list[str]:
    name = ENTITY_PLURAL[ep.entity]
    if ep.entity not in TWO_WAY_ENTITIES:
        return [f"• *{name}*: every field {MARKS[Direction.to_marketo]} (one way, as in Marketo's own sync)"]
    counts = {d: sum(m.direction == d for m in ep.mappings) for d in Direction}
    summary = ", ".join(f"{n} {MARKS[d]}" for d, n in counts.items() if n)
    lines = [f"• *{name}*: {summary or 'no fields'}; collisions: {rule_text(ep.entity)}"]
    differing = sorted((m for m in ep.mappings if _is_exception(ep.entity, m)), key=lambda m: bool(m.one_way_reason))
    exceptions = (f"    `{escape(m.source)}` {mark(ep.entity, m)}" for m in differing)  # the admin's choices first
    return lines + limited_lines(exceptions, limit, "fields")


def direction_lines(plan: FieldPlan, limit: int = MAX_EXCEPTIONS) -> list[str]:
    """Per entity: how many fields go which way and the collision rule, then the fields that differ
    (at most `limit` per entity), so a long plan stays within a message's blocks."""
    return [line for ep in plan.entities for line in _entity_direction_lines(ep, limit)]
