"""The two-way sync's own views: the answer to `/connect-dynamics conflicts` (collisions settled, newest
first) and the write-back's line in the status."""

from __future__ import annotations

from slack_sdk.models.blocks import Block

from bot.models import Side
from bot.store import Conflict, WriteBackRun
from bot.views.kit import MAX_MESSAGE_BLOCKS, Message, context, escape, fit, number, section, sections, when
from bot.views.status import span

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


def write_back_line(run: WriteBackRun, now: float) -> str:
    """`*Marketo → Dynamics* — last run 2 min ago (done) · 12 changes read, 3 our own · 5 records written · …`"""
    counts = run.counts
    collisions = counts.get("marketo_won", 0) + counts.get("dynamics_won", 0)
    return (f"*Marketo → Dynamics* — last run {span(now - run.at)} ago ({escape(run.status)}) · "
            f"{number(counts.get('changes', 0))} changes read, {number(counts.get('echoes', 0))} our own · "
            f"{number(counts.get('records_written', 0))} records written · {number(collisions)} conflicts · "
            f"{number(counts.get('failed', 0))} refused by Dynamics")
