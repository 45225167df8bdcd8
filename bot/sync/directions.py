"""Which way each planned field syncs and who wins a collision: Marketo's own rules (reference G).

Lead and contact fields sync both ways unless the admin chose one way; accounts (and every other
entity) go Dynamics → Marketo only. When the same field changed on both sides since the last cycle,
Marketo wins for leads and Dynamics for contacts and one-way entities, unless the field names its
own winner.
"""

from __future__ import annotations

from bot.models import Direction, Entity, FieldMapping, Side

TWO_WAY_ENTITIES: frozenset[Entity] = frozenset({Entity.lead, Entity.contact})
ENTITY_WINNER: dict[Entity, Side] = {Entity.lead: Side.marketo, Entity.contact: Side.dynamics}


def writes_to_marketo(mapping: FieldMapping) -> bool:
    return mapping.direction in (Direction.both, Direction.to_marketo)


def writes_to_dynamics(mapping: FieldMapping) -> bool:
    return mapping.direction in (Direction.both, Direction.to_dynamics)


def winner(entity: Entity, mapping: FieldMapping) -> Side:
    """Who wins a collision on this field: its own choice, else the entity's rule."""
    if entity not in TWO_WAY_ENTITIES:
        return Side.dynamics
    return mapping.winner or ENTITY_WINNER[entity]
