"""Bulk lead import for the Marketo emulator (reference C9, sync-more B6).

`POST /bulk/v1/leads.json` takes a multipart CSV (`file`, `format`, `lookupField`, `listId`,
`partitionName`); a file of 10 MB or more is refused with HTTP 413 and an 11th job in the queue
with 1016. Jobs run first in, first out, at most two at a time, each importing `rate` rows per
second on a background thread; every row is an insert-or-update through the same lead table and the same
rules the REST path writes with (sync-more B6 allows the `externalCompanyId` and `externalSalesPersonId`
columns): a row naming an unknown sales person fails (718), and so does one setting company fields on a
person linked to a company (1021), each with Marketo's reason in the failures file. Status, failures and warnings are read per `batchId`; the failures and warnings
files are CSV: the original columns plus `Import Failure Reason` / `Import Warning Reason`.

What the reference leaves open, the emulator decides so: an empty cell leaves the field as it is
(as an absent key does on Sync Leads); a column naming no lead field fails every row; a column
naming a read-only field is ignored with a warning on each row that has a value in it; `listId` and
`partitionName` are accepted and ignored (the emulator has no static lists or partitions).
"""

from __future__ import annotations

import csv
import io
import itertools
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

MAX_FILE_BYTES = 10_000_000  # "10 MB", read strictly (not 10 MiB)
MAX_QUEUED = 10  # queued jobs, the running ones included
MAX_RUNNING = 2
FORMATS = {"csv": ",", "tsv": "\t", "ssv": ";"}
# C9: the standard fields an import may look up by; custom string/email/integer fields also may.
STANDARD_LOOKUPS = frozenset({"id", "cookies", "email", "twitterId", "facebookId", "linkedInId", "sfdcAccountId",
                              "sfdcContactId", "sfdcLeadId", "sfdcLeadOwnerId", "sfdcOpptyId"})
FAILURE_COLUMN = "Import Failure Reason"
WARNING_COLUMN = "Import Warning Reason"
TICK = 0.02


class ImportRefused(Exception):
    """A request-level refusal of an import call (`code` is Marketo's)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


# (row values by column, lookup field) -> the warning a row gets, or None; raises the emulator's
# RecordSkip (anything with `message`) when the row fails.
RowWriter = Callable[[dict[str, str], str], str | None]


@dataclass
class ImportJob:
    batch_id: int
    header: list[str]
    rows: list[list[str]]
    lookup: str
    delimiter: str
    unknown: list[str]
    status: str = "Queued"
    processed: int = 0
    failures: list[tuple[list[str], str]] = field(default_factory=list)
    warnings: list[tuple[list[str], str]] = field(default_factory=list)
    credit: float = 0.0
    message: str = ""
    doomed: str | None = None  # the job fails as a whole with this message when it starts

    def describe(self) -> dict[str, Any]:
        item: dict[str, Any] = {"batchId": self.batch_id, "importId": str(self.batch_id), "status": self.status,
                                "numOfLeadsProcessed": self.processed, "numOfRowsFailed": len(self.failures),
                                "numOfRowsWithWarning": len(self.warnings)}
        if self.message:
            item["message"] = self.message
        return item

    def report(self, which: str) -> str:
        """The failures or warnings file: the original columns plus the reason."""
        out = io.StringIO()
        writer = csv.writer(out, delimiter=self.delimiter, lineterminator="\n")
        writer.writerow([*self.header, FAILURE_COLUMN if which == "failures" else WARNING_COLUMN])
        for row, reason in self.failures if which == "failures" else self.warnings:
            writer.writerow([*row, reason])
        return out.getvalue()


class BulkImports:
    """The import queue of one subscription. `lock` is the emulator's: rows are written under it."""

    def __init__(self, lock: threading.RLock, write_row: RowWriter, rate: float) -> None:
        self._lock = lock
        self._write_row = write_row
        self.rate = rate
        self._jobs: dict[int, ImportJob] = {}
        self._queue: deque[ImportJob] = deque()
        self._ids = itertools.count(3401)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._doom: deque[str] = deque()
        self.max_running_seen = 0

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="marketo-bulk-import", daemon=True)
        self._thread.start()

    def fail_next(self, message: str) -> None:
        """The next job submitted ends `Failed` with `message`, importing nothing (called with the lock held)."""
        self._doom.append(message)

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=5)

    # -- requests (called with the lock held) ---------------------------------------------------------
    def submit(self, data: bytes, fmt: str, lookup: str, fields: dict[str, Any], lookups: set[str]) -> dict[str, Any]:
        """Queue a job; `fields` are the lead fields by name, `lookups` the custom fields a lookup may use."""
        if fmt not in FORMATS:
            raise ImportRefused("1003", f"Invalid format '{fmt}'")
        if lookup not in STANDARD_LOOKUPS | lookups:
            raise ImportRefused("1011", f"Field '{lookup}' not supported as lookupField")
        if len(self._queue) >= MAX_QUEUED:
            raise ImportRefused("1016", "Too many imports")
        try:
            rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig")), delimiter=FORMATS[fmt]))
        except (UnicodeDecodeError, csv.Error) as exc:
            raise ImportRefused("1003", f"Invalid file: {exc}") from None
        if not rows or not any(rows[0]):
            raise ImportRefused("1003", "Empty file")
        header = rows[0]
        if lookup != "id" and lookup not in header:
            raise ImportRefused("1003", f"Lookup field '{lookup}' is not a column of the file")
        job = ImportJob(next(self._ids), header, rows[1:], lookup, FORMATS[fmt],
                        unknown=[name for name in header if name != "id" and name not in fields],
                        doomed=self._doom.popleft() if self._doom else None)
        self._jobs[job.batch_id] = job
        self._queue.append(job)
        return {"batchId": job.batch_id, "importId": str(job.batch_id), "status": job.status}

    def job(self, batch_id: int) -> ImportJob:
        found = self._jobs.get(batch_id)
        if found is None:
            raise ImportRefused("1013", f"Import '{batch_id}' not found")
        return found

    def jobs(self) -> list[ImportJob]:
        return list(self._jobs.values())

    # -- the importer ----------------------------------------------------------------------------------
    def _run(self) -> None:
        last = time.monotonic()
        while not self._stop.wait(TICK):
            now = time.monotonic()
            with self._lock:
                self._advance(now - last)
            last = now

    def _advance(self, elapsed: float) -> None:
        running = list(itertools.islice(self._queue, MAX_RUNNING))
        self.max_running_seen = max(self.max_running_seen, len(running))
        for job in running:
            if job.doomed:
                job.status, job.message = "Failed", job.doomed
                self._queue.remove(job)
                continue
            job.status = "Importing"
            job.credit += elapsed * self.rate
            while job.credit >= 1 and job.processed < len(job.rows):
                job.credit -= 1
                self._import(job, job.rows[job.processed])
                job.processed += 1
            if job.processed >= len(job.rows):
                job.status = "Complete"
                imported = job.processed - len(job.failures)
                job.message = (f"Import completed with errors, {imported} records imported ({imported} members), "
                               f"{len(job.failures)} failed" if job.failures else
                               f"Import succeeded, {imported} records imported ({imported} members)")
                self._queue.remove(job)

    def _import(self, job: ImportJob, row: list[str]) -> None:
        if len(row) != len(job.header):
            job.failures.append((row, f"Row has {len(row)} values for {len(job.header)} columns"))
            return
        if job.unknown:
            job.failures.append((row, f"Field '{job.unknown[0]}' not found"))
            return
        try:
            warning = self._write_row(dict(zip(job.header, row, strict=True)), job.lookup)
        except Exception as exc:  # the emulator's RecordSkip: the row fails with its reason
            job.failures.append((row, str(getattr(exc, "message", exc))))
            return
        if warning:
            job.warnings.append((row, warning))


def multipart_fields(content_type: str, body: bytes) -> dict[str, bytes]:
    """The parts of a multipart/form-data body by name (raises ImportRefused 613 when malformed)."""
    boundary = next((p.split("=", 1)[1].strip().strip('"') for p in content_type.split(";")
                     if p.strip().lower().startswith("boundary=")), None)
    if not content_type.lower().startswith("multipart/form-data") or not boundary:
        raise ImportRefused("613", "Invalid multipart request")
    parts: dict[str, bytes] = {}
    for chunk in body.split(b"--" + boundary.encode())[1:]:
        if chunk.startswith(b"--"):
            break
        head, sep, content = chunk.partition(b"\r\n\r\n")
        if not sep:
            raise ImportRefused("613", "Invalid multipart request")
        name = next((p.split("=", 1)[1].strip().strip('"') for line in head.decode(errors="replace").splitlines()
                     if line.lower().startswith("content-disposition") for p in line.split(";")
                     if p.strip().startswith("name=")), None)
        if name:
            parts[name] = content.removesuffix(b"\r\n")
    return parts
