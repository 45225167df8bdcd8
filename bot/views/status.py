"""The ongoing sync in the status (Marketo's Sync Status tab, in Slack), and the answers to `disable` / `enable`."""

from __future__ import annotations

from slack_sdk.models.blocks import Block

from bot.commands import COMMAND
from bot.store import ChangeTime, EntityFigures, OngoingFigures, OngoingSwitch
from bot.views.kit import ENTITY_PLURAL, Message, escape, mention, number, section, when

CHANGE_TIME_TEXT = {ChangeTime.modified_on: "its modifiedon in Dynamics",
                    ChangeTime.read_time: "when its cycle read it"}


def span(seconds: float) -> str:
    """A rough length of time: `45 s`, `3 min`, `2 h 05 min`, `3 d 4 h`."""
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes:02d} min"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h"


def _switch_text(switch: OngoingSwitch | None) -> str:
    if switch is None:
        return "*Ongoing sync: on*"
    if switch.enabled:
        return f"*Ongoing sync: on* (enabled by {mention(switch.by)} {when(switch.at)})"
    return (f"*Ongoing sync: off* (disabled by {mention(switch.by)} {when(switch.at)}). "
            f"`{COMMAND} enable` catches up from where it stopped.")


def _next_cycle(figures: OngoingFigures, now: float) -> str:
    if not figures.enabled:
        return "no next cycle while off"
    if figures.next_cycle_at is None:
        return "no cycle scheduled"
    if figures.next_cycle_at <= now:
        return "next cycle due now"
    return f"next cycle in {span(figures.next_cycle_at - now)}"


def entity_line(row: EntityFigures, next_cycle: str, now: float) -> str:
    """`*Leads* — last cycle 2 min ago · lag 3 min · backlog 0 · written 120 in the last hour, 2,400 in 24 h · …`"""
    name = ENTITY_PLURAL.get(row.entity, escape(row.entity))
    last = f"last cycle {span(now - row.last_cycle_at)} ago" if row.last_cycle_at is not None else "no cycle yet"
    lag = f"lag {span(now - row.caught_up_at)}" if row.caught_up_at is not None else "lag unknown"
    failures = "1 failure" if row.pending_failures == 1 else f"{number(row.pending_failures)} failures"
    line = (f"*{name}* — {last} · {lag} · backlog {number(row.backlog)} · written {number(row.written_last_hour)} "
            f"in the last hour, {number(row.written_last_day)} in 24 h · {failures} waiting for retry · {next_cycle}")
    if row.newest_change_at is not None and row.newest_change_from is not None:
        line += (f"\nNewest change applied: {when(row.newest_change_at)} "
                 f"({CHANGE_TIME_TEXT[row.newest_change_from]})")
    return line


def ongoing_blocks(figures: OngoingFigures, now: float) -> list[Block]:
    """A header line (on / off, by whom) and one section per entity; the lag is how long ago the newest
    cycle that applied everything it read started reading: every change made before then is in Marketo."""
    next_cycle = _next_cycle(figures, now)
    return [section(_switch_text(figures.switch)),
            *(section(entity_line(row, next_cycle, now)) for row in figures.entities)]


def switch_message(switch: OngoingSwitch) -> Message:
    """The answer to a `disable` / `enable` that changed the switch to `switch`."""
    if switch.enabled:
        text = ("The ongoing sync is on again: the next cycle starts within a minute and catches up "
                "on every change made in Dynamics while it was off.")
    else:
        text = ("The ongoing sync is off: no more changes go from Dynamics to Marketo. Where it stopped is kept, "
                f"so `{COMMAND} enable` catches up with nothing missed.")
    return Message(text=text, blocks=[section(text)])


def unchanged_message(current: OngoingSwitch | None) -> Message:
    """The answer to a `disable` / `enable` asking for what already is so."""
    text = f"Nothing changed. {_switch_text(current)}"
    return Message(text=text, blocks=[section(text)])


def refusal_message(text: str) -> Message:
    """A refusal written by the bot (no outside text)."""
    return Message(text=text, blocks=[section(text)])
