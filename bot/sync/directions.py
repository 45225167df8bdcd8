"""Which way each planned field syncs and who wins a collision: Marketo's own rules (reference G).

Lead and contact fields sync both ways unless the admin chose one way; accounts (and every other
entity) go Dynamics → Marketo only. When the same field changed on both sides since the last cycle,
Marketo wins for leads and Dynamics for contacts and one-way entities, unless the field names its
own winner.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from bot.errors import BotError
from bot.models import SYNC_FILTER_ATTRIBUTE, AttributeMeta, Direction, Entity, FieldMapping, FieldPlan, Side

TWO_WAY_ENTITIES: frozenset[Entity] = frozenset({Entity.lead, Entity.contact})
ENTITY_WINNER: dict[Entity, Side] = {Entity.lead: Side.marketo, Entity.contact: Side.dynamics}
LOOKUP_TYPES: frozenset[str] = frozenset({"LookupType", "OwnerType", "CustomerType"})
SOURCE_TYPE_REASONS: dict[int, str] = {1: "calculated in Dynamics", 2: "a rollup in Dynamics"}


class DirectionError(BotError):
    """A direction Marketo cannot sync (Marketo → Dynamics for a field it cannot write)."""


def writes_to_marketo(mapping: FieldMapping) -> bool:
    return mapping.direction in (Direction.both, Direction.to_marketo)


def writes_to_dynamics(mapping: FieldMapping) -> bool:
    return mapping.direction in (Direction.both, Direction.to_dynamics)


def winner(entity: Entity, mapping: FieldMapping) -> Side:
    """Who wins a collision on this field: its own choice, else the entity's rule."""
    if entity not in TWO_WAY_ENTITIES:
        return Side.dynamics
    return mapping.winner or ENTITY_WINNER[entity]


def one_way_reason(entity: Entity, attr: AttributeMeta) -> str | None:
    """Why Marketo cannot write this field to Dynamics, or None when it can (Dataverse metadata, reference B4)."""
    if entity not in TWO_WAY_ENTITIES:
        return f"{entity.value} fields sync one way, as in Marketo's own sync"
    if attr.logical_name == entity.primary_id:
        return "the Dynamics id is set by Dynamics"
    if attr.logical_name == SYNC_FILTER_ATTRIBUTE:
        return "the sync filter decides what syncs; only Dynamics sets it"
    if attr.attribute_type in LOOKUP_TYPES:
        return "a lookup: Marketo holds only its display name, which cannot be written back"
    if attr.source_type in SOURCE_TYPE_REASONS:
        return SOURCE_TYPE_REASONS[attr.source_type]
    if not attr.valid_for_update:
        return "read-only in Dynamics"
    return None


def choose(entity: Entity, attr: AttributeMeta, direction: Direction | None,
           chosen_winner: Side | None) -> tuple[Direction, Side | None, str | None]:
    """The field's direction, winner and one-way reason from the admin's choices (None: the default).

    A field Marketo cannot write syncs Dynamics → Marketo whatever was chosen, except that asking for
    Marketo → Dynamics only is refused (DirectionError). A winner matters only for a two-way field."""
    reason = one_way_reason(entity, attr)
    if reason is not None:
        if direction == Direction.to_dynamics:
            raise DirectionError(f"{attr.label} on {entity.value} cannot sync Marketo → Dynamics: {reason}.")
        return Direction.to_marketo, None, reason
    direction = direction or Direction.both
    return direction, chosen_winner if direction == Direction.both else None, None


def other_side(side: Side) -> Side:
    return Side.dynamics if side == Side.marketo else Side.marketo


class DirectionChoices(BaseModel):
    """What the directions modal submitted for one entity (logical names)."""

    to_marketo: list[str] = Field(default_factory=list)
    to_dynamics: list[str] = Field(default_factory=list)
    other_wins: list[str] = Field(default_factory=list)  # the side that does not win by the entity's rule wins


def settle(entity: Entity, choices: DirectionChoices) -> tuple[dict[str, Direction], dict[str, Side]]:
    """The directions and winners to store; DirectionError for a field chosen one way in both directions."""
    clash = sorted(set(choices.to_marketo) & set(choices.to_dynamics))
    if clash:
        raise DirectionError(f"{', '.join(clash)}: choose Dynamics → Marketo only or Marketo → Dynamics only, "
                             "not both (a field in neither list syncs both ways).")
    directions = {name: Direction.to_marketo for name in choices.to_marketo}
    directions.update({name: Direction.to_dynamics for name in choices.to_dynamics})
    return directions, {name: other_side(ENTITY_WINNER[entity]) for name in choices.other_wins}


def plan_choices(plan: FieldPlan) -> tuple[dict[str, dict[str, Direction]], dict[str, dict[str, Side]]]:
    """The admin's choices a plan was built from: the two-way fields' directions other than both ways (and
    not one way by necessity), and their winners."""
    directions: dict[str, dict[str, Direction]] = {}
    winners: dict[str, dict[str, Side]] = {}
    for ep in plan.entities:
        if ep.entity not in TWO_WAY_ENTITIES:
            continue
        chosen = [m for m in ep.mappings if m.one_way_reason is None]
        directions[ep.entity.value] = {m.source: m.direction for m in chosen if m.direction != Direction.both}
        winners[ep.entity.value] = {m.source: m.winner for m in chosen if m.winner is not None}
    return directions, winners
