"""Sync run messages: live progress (updated in place), the final summary, and the paused notice."""

from __future__ import annotations

import time

from slack_sdk.models.blocks import ActionsBlock, Block, HeaderBlock

from bot.models import EntityProgress, RunStatus, SyncRun
from bot.views import ids
from bot.views.kit import (
    ENTITY_PLURAL,
    MAX_MESSAGE_BLOCKS,
    Message,
    button,
    confirm,
    context,
    duration,
    escape,
    fit,
    mention,
    number,
    section,
)

BAR_WIDTH = 20


def progress_bar(done: int, total: int, width: int = BAR_WIDTH) -> str:
    fraction = 0.0 if total <= 0 else min(1.0, done / total)
    filled = round(fraction * width)
    return "█" * filled + "░" * (width - filled)


def _total(p: EntityProgress) -> int:
    """The estimate, or what is already written when the estimate was low (records added meanwhile)."""
    return max(p.estimated, p.written)


def _percent(p: EntityProgress) -> float:
    if p.done:
        return 100.0
    total = _total(p)
    return 0.0 if total <= 0 else 100.0 * p.written / total


def elapsed_seconds(run: SyncRun, now: float | None = None) -> float:
    end = run.finished_at or (now if now is not None else time.time())
    return max(0.0, end - run.started_at)


def entity_line(p: EntityProgress, elapsed: float) -> str:
    """`*Leads*  ████░░ 40% — 4,000 / 10,000 · 250 records/s · about 24 s left`."""
    pct = _percent(p)
    line = (f"*{ENTITY_PLURAL[p.entity]}*  `{progress_bar(round(pct), 100)}` {pct:.0f}% — "
            f"{number(p.written)} / {number(_total(p))}")
    rate = p.written / elapsed if elapsed > 0 else 0.0
    if p.done:
        line += " · :white_check_mark: done"
    elif rate > 0:
        line += f" · {number(rate)} records/s"
        remaining = _total(p) - p.written
        line += f" · about {duration(remaining / rate)} left" if remaining else " · finishing"
    else:
        line += " · starting…"
    if p.parts_uploaded:
        line += (f"\n    Bulk Import: {number(p.parts_uploaded)} parts uploaded · {number(p.parts_importing)} "
                 f"importing · {number(p.parts_done)} done")
    if p.filtered_out:
        line += f"\n    {number(p.filtered_out)} left out by the sync filter"
    if p.failed or p.skipped:
        line += f"\n    {number(p.failed)} failed, {number(p.skipped)} skipped by Marketo (kept for the report)"
    return line


def _cancel_button(run: SyncRun) -> ActionsBlock:
    return ActionsBlock(block_id=ids.RUN_ACTIONS_BLOCK, elements=[button(
        "Cancel sync", ids.CANCEL_SYNC_ACTION, run.id, style="danger",
        confirm_with=confirm("Cancel the sync?", "It stops after the batch in progress. Records already written "
                             "stay in Marketo.", "Cancel sync", "Keep going", danger=True),
    )])


def progress_message(run: SyncRun, now: float | None = None) -> Message:
    """The live progress post: a bar per entity with done/estimated, %, records/s and ETA."""
    elapsed = elapsed_seconds(run, now)
    total = sum(p.written for p in run.entities)
    estimated = sum(p.estimated for p in run.entities)
    blocks: list[Block] = [HeaderBlock(text=":arrows_counterclockwise: Syncing Dynamics → Marketo")]
    blocks += [section(entity_line(p, elapsed)) for p in run.entities]
    blocks.append(context(f"Started by {mention(run.requester)} · running {duration(elapsed)} · "
                          f"{number(run.api_calls)} Marketo API calls · run `{run.id}`"))
    if run.status in (RunStatus.queued, RunStatus.running):
        blocks.append(_cancel_button(run))
    return Message(text=f"Syncing Dynamics → Marketo: {number(total)} of {number(estimated)} records",
                   blocks=fit(blocks, MAX_MESSAGE_BLOCKS, "entities"))


_SUMMARY_TITLE = {
    RunStatus.finished: ":tada: Sync finished",
    RunStatus.failed: ":x: Sync failed",
    RunStatus.cancelled: ":no_entry_sign: Sync cancelled",
}


def entity_summary(p: EntityProgress) -> str:
    written = (f"{number(p.imported)} imported in {number(p.parts_done)} Bulk Import parts (created or updated)"
               if p.parts_uploaded else f"{number(p.created)} created · {number(p.updated)} updated")
    line = f"*{ENTITY_PLURAL[p.entity]}*: {written} · {number(p.skipped)} skipped · {number(p.failed)} failed"
    if p.filtered_out:
        line += f" · {number(p.filtered_out)} left out by the sync filter"
    return line


BACKFILL_NOTE = ("Backfill of the fields added after go-live: only those columns were written, into records "
                 "already in Marketo; a person missing there was skipped, not created.")
BULK_BACKFILL_NOTE = ("Backfill of the fields added after go-live: only those columns were written. Bulk Import "
                      "always inserts or updates, so a person missing in Marketo was created with them.")


def summary_message(run: SyncRun, quota_left: int | None = None, now: float | None = None) -> Message:
    """The completion post: per-entity counts, duration, throughput, API calls, daily quota left."""
    elapsed = elapsed_seconds(run, now)
    written = sum(p.written for p in run.entities)
    problems = sum(p.failed + p.skipped for p in run.entities)
    title = _SUMMARY_TITLE.get(run.status, f":information_source: Sync {run.status.value}")
    blocks: list[Block] = [HeaderBlock(text=title)]
    if run.backfill_fields:
        blocks.append(context(BULK_BACKFILL_NOTE if any(p.parts_uploaded for p in run.entities) else BACKFILL_NOTE))
    blocks += [section(entity_summary(p)) for p in run.entities]
    stats = [f"*Duration:* {duration(elapsed)}",
             f"*Throughput:* {number(written / elapsed if elapsed > 0 else written)} records/s",
             f"*Marketo API calls:* {number(run.api_calls)}"]
    if quota_left is not None:
        stats.append(f"*Daily quota left:* {number(quota_left)}")
    blocks.append(section(" · ".join(stats)))
    if run.message:
        blocks.append(section(escape(run.message)))
    blocks.append(context(
        f"{number(problems)} records were skipped or failed; the report (CSV) lists each with Marketo's reason."
        if problems else "No record was skipped or failed."
    ))
    blocks.append(context(f"Requested by {mention(run.requester)} · run `{run.id}`"))
    text = f"{title.split(' ', 1)[1]}: {number(written)} records in {duration(elapsed)}"
    return Message(text=text, blocks=fit(blocks, MAX_MESSAGE_BLOCKS, "entities"))


def paused_message(run: SyncRun, now: float | None = None) -> Message:
    """Why the run paused (e.g. Marketo's daily quota) and a Resume button (value = run id)."""
    reason = escape(run.message or "The sync paused.")
    elapsed = elapsed_seconds(run, now)
    blocks: list[Block] = [
        HeaderBlock(text=":double_vertical_bar: Sync paused"),
        section(f"{reason}\nNothing is lost: the sync continues from where it stopped when resumed."),
        *(section(entity_line(p, elapsed)) for p in run.entities),
        ActionsBlock(block_id=ids.RUN_ACTIONS_BLOCK, elements=[
            button("Resume sync", ids.RESUME_SYNC_ACTION, run.id, style="primary"),
        ]),
        context(f"Run `{run.id}` · started by {mention(run.requester)}"),
    ]
    return Message(text=f"Sync paused: {reason}", blocks=fit(blocks, MAX_MESSAGE_BLOCKS))
