"""Which way each field syncs: the directions modal pushed from Step 2 (the plan's lines are in
`bot.views.direction_text`)."""

from __future__ import annotations

from pydantic import BaseModel, Field
from slack_sdk.models.blocks import Block, InputBlock, StaticMultiSelectElement
from slack_sdk.models.views import View

from bot.models import AttributeMeta, Direction, Entity, Side
from bot.sync.directions import ENTITY_WINNER, TWO_WAY_ENTITIES, one_way_reason, other_side
from bot.views import ids
from bot.views.direction_text import SIDE_NAMES, rule_text
from bot.views.fields import attribute_option
from bot.views.kit import (
    ENTITY_PLURAL,
    MAX_OPTIONS,
    ViewMetadata,
    context,
    escape,
    limited_lines,
    modal,
    section,
)

MAX_FIXED_LISTED = 20  # one-way-by-necessity fields named in the modal, per entity
ONE_WAY_ENTITIES = "Accounts sync one way (Dynamics → Marketo), as in Marketo's own sync."


class EntityDirectionsView(BaseModel):
    """What the directions modal shows for one entity: its selected fields and the saved choices."""

    entity: Entity
    fields: list[AttributeMeta]
    directions: dict[str, Direction] = Field(default_factory=dict)
    winners: dict[str, Side] = Field(default_factory=dict)


def _multi_select(entity: Entity, which: str, label: str, hint: str, choices: list[AttributeMeta],
                  chosen: set[str]) -> InputBlock:
    options = [attribute_option(a) for a in choices[:MAX_OPTIONS]]
    initial = [o for o in options if o.value in chosen]
    return InputBlock(
        block_id=ids.direction_block_id(entity, which), label=label, optional=True, hint=hint,
        element=StaticMultiSelectElement(action_id=ids.direction_action_id(entity, which), options=options,
                                         initial_options=initial or None, placeholder="Choose fields"),
    )


def _entity_blocks(view: EntityDirectionsView) -> list[Block]:
    entity, name = view.entity, ENTITY_PLURAL[view.entity]
    fixed = [(a, reason) for a in view.fields if (reason := one_way_reason(entity, a))]
    free = [a for a in view.fields if one_way_reason(entity, a) is None]
    blocks: list[Block] = [section(
        f"*{name}* — {len(view.fields)} fields. A field not listed below syncs *both ways*; when it changed on "
        f"both sides since the last cycle, {rule_text(entity)}.")]
    if free:
        chosen = {way: {n for n, d in view.directions.items() if d == way} for way in Direction}
        other = other_side(ENTITY_WINNER[entity])
        blocks += [
            _multi_select(entity, "to_marketo", "Dynamics → Marketo only",
                          "Marketo's changes to these fields are not written to Dynamics.", free,
                          chosen[Direction.to_marketo]),
            _multi_select(entity, "to_dynamics", "Marketo → Dynamics only",
                          "Dynamics' changes to these fields are not written to Marketo.", free,
                          chosen[Direction.to_dynamics]),
            _multi_select(entity, "winner", f"{SIDE_NAMES[other]} wins collisions on",
                          f"Fields syncing both ways where {SIDE_NAMES[other]}'s value wins instead.", free,
                          {n for n, side in view.winners.items() if side == other}),
        ]
    if len(free) > MAX_OPTIONS:
        blocks.append(context(f":warning: Only the first {MAX_OPTIONS} fields can be chosen here."))
    if fixed:
        listed = limited_lines((f"`{escape(a.logical_name)}` ({escape(reason)})" for a, reason in fixed),
                               MAX_FIXED_LISTED, "fields")
        blocks.append(context(":lock: Always Dynamics → Marketo, Marketo cannot write them: " + ", ".join(listed)))
    return blocks


def directions_modal(connection_id: str, per_entity: list[EntityDirectionsView]) -> View:
    """Pushed from Step 2: for leads and contacts, the fields that sync one way and the collision
    exceptions (three multi-selects each, so a hundred fields stay within Slack's limits)."""
    blocks: list[Block] = [section(
        "Marketo's sync is *two-way for leads and contacts*: changes made in Marketo are written back to "
        "Dynamics. Choose the exceptions; *Save* returns to the field picker.")]
    shown = [v for v in per_entity if v.entity in TWO_WAY_ENTITIES and v.fields]
    for view in shown:
        blocks += _entity_blocks(view)
    if not shown:
        blocks.append(section("No lead or contact field is selected yet: select some first."))
    if any(v.entity not in TWO_WAY_ENTITIES and v.fields for v in per_entity):
        blocks.append(context(ONE_WAY_ENTITIES))
    return modal("Sync directions", ids.DIRECTIONS_CALLBACK, blocks, submit="Save", close="Back",
                 metadata=ViewMetadata(connection_id=connection_id))
