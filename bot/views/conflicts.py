"""The answer to `/connect-dynamics conflicts`: collisions the two-way sync settled, newest first."""

from __future__ import annotations

from slack_sdk.models.blocks import Block

from bot.models import Side
from bot.store import Conflict
from bot.views.kit import MAX_MESSAGE_BLOCKS, Message, context, escape, fit, number, section, sections, when

WINNER = {Side.marketo: "Marketo's value kept", Side.dynamics: "Dynamics' value kept"}


def _value(value: str | None) -> str:
    return f"`{escape(value)}`" if value not in (None, "") else "_empty_"


def conflict_line(conflict: Conflict) -> str:
    """One collision: record, field, both values and which one won."""
    return (f"• {escape(conflict.entity)} `{escape(conflict.record_id)}` — {escape(conflict.field)}\n"
            f"   Marketo {_value(conflict.marketo_value)}, Dynamics {_value(conflict.dynamics_value)}: "
            f"{WINNER[conflict.winner]}, {when(conflict.at)}")


def conflicts_message(conflicts: list[Conflict], total: int, scope: str) -> Message:
    heading = f"*Sync conflicts{escape(scope)}:* {number(total)} kept"
    if len(conflicts) < total:
        heading += f", the {len(conflicts)} most recent shown"
    blocks: list[Block] = [*sections([conflict_line(c) for c in conflicts], heading)]
    blocks.append(context("A conflict is a field changed in both Marketo and Dynamics between two cycles. "
                          "Marketo's value wins for leads and Dynamics' for contacts, unless the field names its "
                          "own winner; both sides then hold the winning value."))
    return Message(text=f"Sync conflicts: {number(total)}", blocks=fit(blocks, MAX_MESSAGE_BLOCKS, "conflicts"))


def no_conflicts_message(scope: str) -> Message:
    text = f"No sync conflicts{escape(scope)}: no field was changed on both sides between two cycles."
    return Message(text=text, blocks=[section(text)])
