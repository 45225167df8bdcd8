"""The Bulk Import path of an initial sync (or backfill) of leads or contacts: large loads in few API calls.

Records are read and prepared as on the REST path (`engine.Prepared` rules), then written as CSV rows
into *parts*: temporary files of at most `MAX_PART_BYTES` (Marketo refuses 10 MB), never held in
memory. Each part is one import job (`lookupField` = the Dynamics-id field). Up to `QUEUE_LIMIT` jobs
are in Marketo's queue at once across every worker: each holds a slot in Redis (`BulkSlots`).

Resumable per part. Uploading a part books it in one transaction: the checkpoint's resume point moves
past its records, its `batchId` is kept in `Checkpoint.imports`, and what was read, left out by the
filter or failed conversion is counted. A finished import is booked in a second transaction that
removes it from `imports` and counts Marketo's result, with the rows of its failures and warnings
files in the failure ledger. A job that resumes polls the imports it finds in the checkpoint and never
uploads them again; the only part that can be sent twice is one whose upload a dead worker had not
booked yet (it is counted in `rewritten_*`): an import is an upsert, so that changes no person twice.

The CRM rules of the REST path hold here too, applied to each chunk of records before it becomes CSV rows,
by the same functions: `People.settle` (the `settle` hook: merges followed, qualified leads joined to their
contact's person, contact fields winning), then `LinkedWrites.prepare_people` (owners upserted as sales persons
first, batched, unknown ones left off; a company link only to an account already written; no company fields on
a linked person). Two kinds of person go through the REST path instead (`LinkedWrites.sync_leads`), since an
import says nothing per row until it is done and cannot be retried row by row:

- one whose account is not written yet: it must be recorded as waiting for it once it is in Marketo, and
  linked at once if another worker writes the account meanwhile;
- a contact qualified from a lead: its person is the lead's, which may be linked to a company already, so
  Marketo refuses the contact's company fields (1021) and the REST path resends it without them.

Both are rare in an initial load (accounts sync before the people that point to them).

Parts are written on the worker's machine under `parts_dir(run_id)`, in one directory per attempt of an entity
(`{entity}-{attempt}`), removed however the attempt ends. A SIGKILLed worker leaves its directory behind: the
entity's next attempt removes it, and any bulk import removes run directories older than a job may live.

Polling costs few calls: only the oldest import is polled (Marketo runs them first in, first out),
at the time its remaining rows should be done at the import rate seen so far, between
`poll_seconds` and six times that (Marketo suggests every 5-30 s).
"""

from __future__ import annotations

import contextlib
import csv
import glob
import io
import logging
import os
import shutil
import stat
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from bot import metrics
from bot.marketo.errors import MarketoFatal
from bot.marketo.models import ImportStatus
from bot.models import Counts, EntityPlan
from bot.store import Lease, RunTx
from bot.store.bulk_slots import BulkSlots
from bot.sync.checkpoint import BatchOutcome, Checkpoint, ImportMark
from bot.sync.convert import RecordConverter
from bot.sync.engine import Booking, Outcome, PageSource, Prepared, Settle, position, tally
from bot.sync.lease import LeaseLost
from bot.sync.ledger import LedgerEntry
from bot.sync.links import COMPANY_ID, SALES_PERSON_ID
from bot.sync.runs import JOB_TIMEOUT
from bot.sync.write_path import MAX_PART_BYTES

log = logging.getLogger(__name__)

QUEUE_LIMIT = 10  # jobs in Marketo's import queue per subscription, the 2 running included
SLOT_LEASE_SECONDS = 300.0  # a dead worker's slots come back after this
SLOT_RETRY_SECONDS = 1.0
MAX_POLL_FACTOR = 6
FAILED_CODE = "bulk-import"
WARNING_CODE = "bulk-import-warning"
FAILURE_COLUMN = "Import Failure Reason"
WARNING_COLUMN = "Import Warning Reason"
CHUNK = 300  # records settled and linked together (the REST path's batch size)
WRITTEN = frozenset({"created", "updated"})
PARTS_ROOT = "connect-dynamics-bulk-import"  # under the system's temporary directory
STALE_PARTS_SECONDS = 2 * JOB_TIMEOUT  # no job writes in a directory this old: RQ stops a job after JOB_TIMEOUT


def parts_dir(run_id: str) -> str:
    """This machine's directory for a run's parts."""
    return os.path.join(tempfile.gettempdir(), PARTS_ROOT, run_id)


def private_parts_dir(run_id: str, name: str) -> str:
    """`parts_dir(run_id)/name`, every level of it made for this user alone, as `tempfile.mkdtemp` makes its
    directories: the parts hold personal data and the temporary directory is shared. A level that is not a
    directory of this user's (a symlink, or another user's) is refused rather than written into."""
    path = tempfile.gettempdir()
    for part in (PARTS_ROOT, run_id, name):
        path = os.path.join(path, part)
        os.makedirs(path, mode=0o700, exist_ok=True)
        info = os.lstat(path)
        if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
            raise PermissionError(f"{path} is not a directory of this user's; bulk import parts are not written there")
        os.chmod(path, 0o700)
    return path


def remove_stale_parts(now: float) -> None:
    """Remove the part directories of runs no job has written in for `STALE_PARTS_SECONDS` (left by a dead
    worker whose entity resumed elsewhere, or never did)."""
    try:
        runs = list(os.scandir(os.path.join(tempfile.gettempdir(), PARTS_ROOT)))
    except FileNotFoundError:
        return
    for run in runs:
        if run.is_dir(follow_symlinks=False) and now - run.stat().st_mtime > STALE_PARTS_SECONDS:
            shutil.rmtree(run.path, ignore_errors=True)


def columns(plan: EntityPlan) -> list[str]:
    """The CSV header: the Dynamics-id field, every mapped Marketo field, then the company and owner links
    the plan reads (sync-more B6 allows both columns in an import)."""
    links = [name for name, lookup in ((COMPANY_ID, plan.company_lookup), (SALES_PERSON_ID, plan.owner_lookup))
             if lookup]
    return list(dict.fromkeys([plan.id_field, *(m.marketo_name for m in plan.mappings), *links]))


def cell(value: Any) -> str:
    """A converted value as Marketo reads it in a CSV cell; an empty cell leaves the field as it is.

    Cells are not given the report's formula guard (`bot.safe_csv`): Marketo reads this file, not a
    spreadsheet, and a `'` would change the person's data (phone numbers start with `+`)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


@dataclass
class _Row:
    """What became of one record read: a CSV line, a failure, a REST write (`written`: created, updated or
    skipped, with its failure), or nothing (left out)."""

    line: bytes = b""
    person: str = ""  # the Dynamics id of a CSV line's person
    failure: LedgerEntry | None = None
    written: str | None = None


@dataclass
class _Part:
    seq: int
    path: str
    file: BinaryIO
    bytes: int = 0
    rows: int = 0
    counts: Counts = field(default_factory=Counts)  # what became of the records read (no `imported` yet)
    failures: list[LedgerEntry] = field(default_factory=list)
    people: list[str] = field(default_factory=list)  # its rows' Dynamics ids, for `people_written`
    end_link: str | None = None
    end_offset: int = 0


@dataclass
class _Pending:
    seq: int
    batch_id: int
    rows: int
    path: str | None  # the uploaded file, while this process has it (to list a Failed job's records)
    due: float
    wait: float
    seen: tuple[float, int] | None = None  # (when, rows processed) at the last poll


class BulkEntitySync:
    """Runs one person entity's initial load through Bulk Import, from its checkpoint until done or stopped."""

    def __init__(self, plan: EntityPlan, source: PageSource, marketo: Any, booking: Booking, slots: BulkSlots, *,
                 select: list[str] | None = None, poll_seconds: float = 5.0, part_bytes: int = MAX_PART_BYTES,
                 queue_limit: int = QUEUE_LIMIT, settle: Settle = lambda prepared: None,
                 action: str = "createOrUpdate") -> None:
        self.plan = plan
        self.entity = plan.entity
        self.select = select or plan.select
        self.source = source
        self.marketo = marketo
        self.state = booking.state
        self.lease: Lease = booking.lease
        self.stop = booking.stop
        self.on_progress = booking.on_progress
        self.slots = slots
        self.poll_seconds = poll_seconds
        self.part_bytes = part_bytes
        self.queue_limit = queue_limit
        self.settle = settle
        self.action = action
        self._convert = RecordConverter(plan)
        self._columns = columns(plan)
        self._header = self._line(self._columns)
        self._pending: dict[int, _Pending] = {}
        self._rate: float | None = None  # rows per second Marketo imports, as seen
        self._calls_booked = self._calls()
        self._delta_link: str | None = None
        self._seq = 0
        self._rewritten: int | None = None
        self._workdir = ""

    # -- the run --------------------------------------------------------------------------------------
    def run(self) -> Outcome:
        """Typed errors (Marketo, Redis, LeaseLost) propagate: the entity job concludes from them."""
        ckpt = self.state.load(self.entity)
        now = time.monotonic()
        for seq, mark in sorted(ckpt.imports.items()):
            self.slots.take(self._holder(seq), self.queue_limit, SLOT_LEASE_SECONDS, force=True)
            self._pending[seq] = _Pending(seq, mark.batch_id, mark.rows, None, due=now, wait=self.poll_seconds)
        if ckpt.seq in self.state.inflight(self.entity):
            self._rewritten = ckpt.seq  # its upload may have reached Marketo before the worker died
        log.info("bulk import of %s: from part %d, %d imports to watch", self.entity.value, ckpt.seq,
                 len(self._pending))
        with self._attempt_dir(ckpt.attempts):
            return self._loop(ckpt)

    @contextlib.contextmanager
    def _attempt_dir(self, attempt: int) -> Iterator[None]:
        """This attempt's directory for its parts, removed however it ends; an earlier attempt's (its worker
        died) is removed first."""
        remove_stale_parts(time.time())
        run_dir = parts_dir(self.state.run_id)
        for earlier in glob.glob(os.path.join(glob.escape(run_dir), f"{self.entity.value}-*")):
            shutil.rmtree(earlier, ignore_errors=True)
        self._workdir = private_parts_dir(self.state.run_id, f"{self.entity.value}-{attempt}")
        try:
            yield
        finally:
            shutil.rmtree(self._workdir, ignore_errors=True)
            with contextlib.suppress(OSError):  # another entity of the run still has its parts there
                os.rmdir(run_dir)

    def _loop(self, ckpt: Checkpoint) -> Outcome:
        """Read and upload a part whenever a slot is free; in between, poll the imports in the queue."""
        parts = self._parts(ckpt)
        self._seq = ckpt.seq  # the next part to read; it is read only once it holds a slot
        reading = True
        while not self.stop.is_set():
            self._renew()
            self._poll_due()
            if reading and self.slots.take(self._holder(self._seq), self.queue_limit, SLOT_LEASE_SECONDS):
                part = next(parts, None)
                if part is None:
                    self.slots.release(self._holder(self._seq))
                    reading = False
                else:
                    self._upload(part)
                    self._seq = part.seq + 1
                continue
            if not reading and not self._pending:
                return Outcome("done", delta_link=self._delta_link)
            self.stop.wait(self._idle())
        if self.state.cancel_requested():  # its imports stay in Marketo's queue, but nothing watches them now
            self.slots.release_run(self.state.team_id, self.state.run_id)
        return Outcome("stopped")

    def _holder(self, seq: int) -> str:
        return self.slots.holder(self.state.team_id, self.state.run_id, self.entity.value, seq)

    def _renew(self) -> None:
        held = [self._holder(seq) for seq in self._pending]
        self.slots.renew([*held, self._holder(self._seq)], SLOT_LEASE_SECONDS)

    def _idle(self) -> float:
        """How long to wait: until the oldest import is due, or a while for a free slot."""
        due = min((p.due for p in self._pending.values()), default=time.monotonic() + SLOT_RETRY_SECONDS)
        return max(0.01, min(due - time.monotonic(), SLOT_RETRY_SECONDS))

    def _calls(self) -> int:
        return int(getattr(self.marketo, "calls_made", 0))

    def _take_calls(self) -> int:
        calls = self._calls()
        used, self._calls_booked = calls - self._calls_booked, calls
        return used

    # -- reading into parts ---------------------------------------------------------------------------------
    def _parts(self, ckpt: Checkpoint) -> Iterator[_Part]:
        """Cut parts from the resume point: a part ends before the row that would take it past the limit."""
        seq = ckpt.seq
        part = self._part(seq)
        pages = self.source.iter_pages(self.entity.value, self.select, track_changes=self.plan.change_tracking,
                                       start_link=ckpt.link)
        skip, last = ckpt.offset, None
        for page in pages:
            if self.stop.is_set():
                part.file.close()
                return
            last = page
            for start in range(skip, len(page.records), CHUNK):
                for index, row in enumerate(self._rows_of(page.records[start:start + CHUNK]), start):
                    if row.line and part.rows and part.bytes + len(row.line) > self.part_bytes:
                        part.end_link, part.end_offset = position(page, index)
                        yield self._closed(part)
                        seq += 1
                        part = self._part(seq)
                    self._add(part, row)
            skip = 0
            if page.delta_link:
                self._delta_link = page.delta_link
        if part.counts.read and last is not None:
            part.end_link, part.end_offset = position(last, len(last.records))
            yield self._closed(part)
        else:
            part.file.close()

    def _part(self, seq: int) -> _Part:
        path = os.path.join(self._workdir, f"{seq}.csv")
        part = _Part(seq, path, open(path, "wb"))  # noqa: SIM115 - closed when the part is cut
        part.file.write(self._header)
        part.bytes = len(self._header)
        return part

    @staticmethod
    def _closed(part: _Part) -> _Part:
        part.file.close()
        return part

    def _rows_of(self, records: list[dict]) -> list[_Row]:
        """One chunk of records read, prepared and made to follow the CRM rules (see the module docstring)."""
        prepared = Prepared(self.plan, self._convert)
        rows: list[_Row] = []
        at: dict[int, int] = {}  # position in `prepared.records` → index of its row
        for record in records:
            written, failed = len(prepared.records), len(prepared.failures)
            prepared.add(record)
            if len(prepared.records) > written:
                at[written] = len(rows)
            rows.append(_Row(failure=prepared.failures[-1] if len(prepared.failures) > failed else None))
        self.settle(prepared)
        qualified = set(prepared.identities.qualified_from)
        people = self.marketo.prepare_people(prepared.records)
        rest = [i for i, ((_, account), key) in enumerate(zip(people, prepared.keys, strict=True))
                if account or key[0] in qualified]
        if rest:
            self._through_rest(prepared, rest, [rows[at[i]] for i in rest])
        for i in sorted(set(range(len(people))) - set(rest)):
            person = people[i][0]
            rows[at[i]].line = self._line([cell(person.get(n)) for n in self._columns])
            rows[at[i]].person = str(person[self.plan.id_field])
        return rows

    def _through_rest(self, prepared: Prepared, indexes: list[int], rows: list[_Row]) -> None:
        """Write these persons through `LinkedWrites.sync_leads` (it applies the links and the 1021 retry itself)."""
        results = self.marketo.sync_leads([prepared.records[i] for i in indexes], self.plan.id_field,
                                          action=self.action)
        outcome = BatchOutcome(seq=0, end_link=None, end_offset=0)
        tally(outcome, self.entity, [prepared.keys[i] for i in indexes], results)
        failures = iter(outcome.failures)  # one per record not written, in order
        for row, result in zip(rows, results, strict=True):
            row.written = result.status if result.status in WRITTEN else "skipped"
            if row.written == "skipped":
                row.failure = next(failures)

    @staticmethod
    def _add(part: _Part, row: _Row) -> None:
        counts = part.counts
        counts.read += 1
        if row.line:
            part.file.write(row.line)
            part.bytes += len(row.line)
            part.rows += 1
            part.people.append(row.person)
        elif row.failure is not None:
            part.failures.append(row.failure)
            if row.written == "skipped":
                counts.skipped += 1
            else:
                counts.failed += 1
        elif row.written == "created":
            counts.created += 1
        elif row.written == "updated":
            counts.updated += 1
        else:
            counts.filtered_out += 1

    def _line(self, cells: list[str]) -> bytes:
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\n").writerow(cells)
        return buffer.getvalue().encode()

    # -- uploading ------------------------------------------------------------------------------------------
    def _upload(self, part: _Part) -> None:
        batch_id = None
        if part.rows:
            # Linked now or to no account: these people wait for no company (settled before the import).
            self.marketo.people_written([({self.plan.id_field: i}, None) for i in part.people])
            self.state.mark_inflight(self.entity, part.seq)
            batch_id = self.marketo.import_leads(part.path, self.plan.id_field).batch_id
        rewritten = part.rows if self._rewritten == part.seq else 0
        if not self._book_upload(part, batch_id, rewritten):
            log.warning("bulk import part %d of %s was booked already", part.seq, self.entity.value)
        if batch_id is None:
            self.slots.release(self._holder(part.seq))
            os.unlink(part.path)
        else:
            self._pending[part.seq] = _Pending(part.seq, batch_id, part.rows, part.path,
                                               due=time.monotonic() + self.poll_seconds, wait=self.poll_seconds)
        metrics.count_booked(self.entity.value, part.counts.read, part.counts.created + part.counts.updated,
                             len(part.failures))
        self.on_progress()

    def _book_upload(self, part: _Part, batch_id: int | None, rewritten: int) -> bool:
        """The part is in Marketo's queue (or had no row to send): move the resume point past it."""
        calls = self._take_calls()

        def body(tx: RunTx[Checkpoint]) -> tuple[Any, bool]:
            if not tx.holds(self.lease):
                raise LeaseLost()
            ckpt = tx.checkpoint(self.entity.value) or Checkpoint(entity=self.entity)
            if part.seq != ckpt.seq:
                return None, False
            ckpt.link, ckpt.offset, ckpt.seq = part.end_link, part.end_offset, part.seq + 1
            if batch_id is not None:
                ckpt.imports[part.seq] = ImportMark(batch_id=batch_id, rows=part.rows)
            if rewritten:
                ckpt.rewritten_batches += 1
                ckpt.rewritten_records += rewritten
            run = tx.run()
            progress = next(p for p in run.entities if p.entity == self.entity)
            progress.add(part.counts)
            progress.parts_uploaded += batch_id is not None
            run.api_calls += calls

            def writes(w: RunTx[Checkpoint]) -> None:
                w.put_checkpoint(self.entity.value, ckpt)
                w.put_run(run)
                self.state.ledger.add_in(w, part.failures)
                w.booked(self.entity.value, part.seq)

            return writes, True

        return self.state.records.transact([self.entity.value], body, lease=self.lease)

    # -- polling and booking results -------------------------------------------------------------------------
    def _poll_due(self) -> None:
        """Poll the oldest import when it is due; book it (and the next, at once) when finished."""
        while self._pending:
            head = self._pending[min(self._pending)]
            now = time.monotonic()
            if head.due > now:
                return
            status = self._status(head)
            if not status.finished:
                self._plan_next_poll(head, status, now)
                return
            self._finish(head, status)
            if self._pending:
                self._pending[min(self._pending)].due = now

    def _status(self, pending: _Pending) -> ImportStatus:
        try:
            return self.marketo.import_status(pending.batch_id)
        except MarketoFatal as error:
            if error.code != "1013":
                raise
            return ImportStatus(batch_id=pending.batch_id, status="Failed",
                                message="Marketo no longer knows this import (a batchId lives 7 days)")

    def _plan_next_poll(self, head: _Pending, status: ImportStatus, now: float) -> None:
        if head.seen is not None and status.processed > head.seen[1]:
            self._rate = (status.processed - head.seen[1]) / max(now - head.seen[0], 1e-3)
        head.seen = (now, status.processed)
        if self._rate:
            wait = (head.rows - status.processed) / self._rate
        else:
            wait, head.wait = head.wait, head.wait * 2
        head.due = now + min(max(wait, self.poll_seconds), self.poll_seconds * MAX_POLL_FACTOR)

    def _finish(self, pending: _Pending, status: ImportStatus) -> None:
        counts, entries = self._result(pending, status)
        if not self._book_done(pending.seq, counts, entries):
            log.warning("bulk import %d of %s was booked already", pending.batch_id, self.entity.value)
        self.slots.release(self._holder(pending.seq))
        del self._pending[pending.seq]
        if pending.path:
            os.unlink(pending.path)
        metrics.count_booked(self.entity.value, 0, counts.imported, counts.skipped + counts.failed)
        self.on_progress()

    def _result(self, pending: _Pending, status: ImportStatus) -> tuple[Counts, list[LedgerEntry]]:
        """Marketo's counts of one finished import and its failed and warned rows, with Marketo's reasons."""
        if status.status == "Failed":
            message = f"Marketo's bulk import {pending.batch_id} failed: {status.message or 'no reason given'}"
            return Counts(failed=pending.rows), self._every_row(pending, message)
        entries: list[LedgerEntry] = []
        if status.failed:
            entries += self._rows(self.marketo.import_failures(pending.batch_id), FAILURE_COLUMN, FAILED_CODE)
        if status.warnings:
            entries += self._rows(self.marketo.import_warnings(pending.batch_id), WARNING_COLUMN, WARNING_CODE)
        return Counts(imported=status.processed - status.failed, skipped=status.failed), entries

    def _rows(self, data: bytes, reason_column: str, code: str) -> list[LedgerEntry]:
        rows = csv.DictReader(io.StringIO(data.decode("utf-8-sig")))
        return [LedgerEntry(entity=self.entity.value, id=row.get(self.plan.id_field) or "",
                            email=row.get("email") or None, code=code,
                            message=row.get(reason_column) or "Marketo gave no reason") for row in rows]

    def _every_row(self, pending: _Pending, message: str) -> list[LedgerEntry]:
        """Every record of a failed import (from its file, while this process has it; else one line)."""
        if pending.path is None:
            return [LedgerEntry(entity=self.entity.value, id="", code=FAILED_CODE,
                                message=f"{message}; {pending.rows} records were not imported")]
        with open(pending.path, encoding="utf-8", newline="") as file:
            return [LedgerEntry(entity=self.entity.value, id=row.get(self.plan.id_field) or "",
                                email=row.get("email") or None, code=FAILED_CODE, message=message)
                    for row in csv.DictReader(file)]

    def _book_done(self, seq: int, counts: Counts, entries: list[LedgerEntry]) -> bool:
        calls = self._take_calls()

        def body(tx: RunTx[Checkpoint]) -> tuple[Any, bool]:
            if not tx.holds(self.lease):
                raise LeaseLost()
            ckpt = tx.checkpoint(self.entity.value) or Checkpoint(entity=self.entity)
            if ckpt.imports.pop(seq, None) is None:
                return None, False
            run = tx.run()
            progress = next(p for p in run.entities if p.entity == self.entity)
            progress.add(counts)
            progress.parts_done += 1
            run.api_calls += calls

            def writes(w: RunTx[Checkpoint]) -> None:
                w.put_checkpoint(self.entity.value, ckpt)
                w.put_run(run)
                self.state.ledger.add_in(w, entries)

            return writes, True

        return self.state.records.transact([self.entity.value], body, lease=self.lease)

