"""What a finished run reports: the failure CSV (streamed from the Redis ledger) and a plain summary."""

from __future__ import annotations

import os
import tempfile
from typing import TextIO

from bot.models import SyncRun
from bot.safe_csv import SafeCsvWriter
from bot.store import Store
from bot.sync.ledger import Ledger

CSV_COLUMNS = ("id", "email", "code", "message")


def write_failure_csv(ledger: Ledger, out: TextIO) -> int:
    """Write the ledger as CSV (header + one row per record), streaming; returns the row count.

    Cells are neutralised against formula injection: the values come from Dynamics and Marketo."""
    writer = SafeCsvWriter(out)
    writer.writerow(CSV_COLUMNS)
    rows = 0
    for entry in ledger:
        writer.writerow((entry.id, entry.email, entry.code, entry.message))
        rows += 1
    return rows


def failure_csv_file(store: Store, team_id: str, run_id: str) -> tuple[str, int]:
    """The failure report in a temporary file (caller deletes it): (path, rows)."""
    handle, path = tempfile.mkstemp(prefix=f"sync-failures-{run_id}-", suffix=".csv")
    try:
        with os.fdopen(handle, "w", newline="", encoding="utf-8") as out:
            rows = write_failure_csv(Ledger(store, team_id, run_id), out)
    except BaseException:
        os.unlink(path)
        raise
    return path, rows


def duration_seconds(run: SyncRun) -> float:
    end = run.finished_at or run.started_at
    return max(end - run.started_at, 0.0)


def summary_text(run: SyncRun, quota_left: int | None = None) -> str:
    """A plain-text summary for email and notification fallbacks (no Block Kit)."""
    seconds = duration_seconds(run)
    written = sum(p.written for p in run.entities)
    lines = [f"Dynamics → Marketo sync {run.status.value}."]
    for p in run.entities:
        persons = (f"{p.imported} imported by Bulk Import" if p.parts_uploaded
                   else f"{p.created} created, {p.updated} updated")
        lines.append(f"{p.entity.value}: {persons}, {p.skipped} skipped, {p.failed} failed "
                     f"({p.filtered_out} excluded by the sync filter).")
    rate = written / seconds if seconds else 0.0
    lines.append(f"Duration: {_duration(seconds)}; throughput {rate:,.0f} records/s.")
    quota = f"; daily quota left: {quota_left:,}" if quota_left is not None else ""
    lines.append(f"Marketo API calls used: {run.api_calls:,}{quota}.")
    if run.message:
        lines.append(run.message)
    return "\n".join(lines)


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m {secs:02d}s" if hours else f"{minutes}m {secs:02d}s"
