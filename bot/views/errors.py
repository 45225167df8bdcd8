"""The answer to `/connect-dynamics errors`: the most recent failures of the ongoing sync."""

from __future__ import annotations

from slack_sdk.models.blocks import Block

from bot.models import Direction
from bot.store import SyncError
from bot.views.kit import MAX_MESSAGE_BLOCKS, Message, context, escape, fit, number, section, sections, when


def error_line(entry: SyncError, max_attempts: int) -> str:
    """One failed record: entity, id, email, reason (code), attempts and whether it is still retried. A
    Marketo → Dynamics failure (the write-back) says so; it is written again when the person next changes."""
    email = f" — {escape(entry.email)}" if entry.email else ""
    code = f" ({escape(entry.code)})" if entry.code else ""
    if entry.direction == Direction.to_dynamics:
        return (f"• {escape(entry.entity)} `{escape(entry.id)}`{email} — Marketo → Dynamics\n"
                f"   {escape(entry.reason)}{code}\n"
                f"   refused by Dynamics, written again when the person changes in Marketo; "
                f"last failed {when(entry.last_failed_at)}")
    state = "kept as an error, no more retries" if entry.attempts >= max_attempts else "retried next cycle"
    return (f"• {escape(entry.entity)} `{escape(entry.id)}`{email}\n"
            f"   {escape(entry.reason)}{code}\n"
            f"   attempt {entry.attempts} of {max_attempts}, {state}; last failed {when(entry.last_failed_at)}")


def errors_message(entries: list[SyncError], total: int, scope: str, max_attempts: int, *,
                   csv_follows: bool) -> Message:
    """The newest `entries` (already limited) of `total` failures in `scope` ("leads since …")."""
    heading = f"*Sync errors{escape(scope)}:* {number(total)} record{'s' if total != 1 else ''}"
    if len(entries) < total:
        heading += f", the {len(entries)} most recent shown"
    blocks: list[Block] = [*sections([error_line(e, max_attempts) for e in entries], heading)]
    notes = ["Failed records are re-read from Dynamics and written again on the next cycles, "
             f"up to {max_attempts} attempts; then they stay here as errors until the record changes."]
    if csv_follows:
        notes.append("The full list follows as a CSV file in your direct messages with the bot.")
    blocks.append(context(" ".join(notes)))
    return Message(text=f"Sync errors: {number(total)}", blocks=fit(blocks, MAX_MESSAGE_BLOCKS, "errors"))


def no_errors_message(scope: str) -> Message:
    text = (f"No sync errors{escape(scope)}: every record the ongoing sync read was written to Marketo "
            "(or is excluded by the sync filter).")
    return Message(text=text, blocks=[section(text)])
