"""The initial-sync pipeline for one entity: read Dataverse pages, filter, convert, upsert to Marketo.

One reader thread streams pages into a bounded queue of batches (≤ 300 records); a pool of
writer threads, sized to Marketo's concurrency cap, upserts them. Reading and writing overlap,
so the whole takes about as long as the slower side, and memory is one page plus a few batches
however large the table. Each written batch is booked in Redis (see `checkpoint.py`); the
pipeline itself keeps no state that a crash could lose.

The engine knows its collaborators only by shape (`PageSource.iter_pages`, a `MarketoTarget` of
callables, a `Booking`), so it runs the same against the real clients, the emulators and small
in-memory fakes.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from bot import metrics
from bot.errors import BotError
from bot.logging_setup import carried
from bot.models import Entity, EntityPlan
from bot.store import REDIS_UNAVAILABLE, Lease
from bot.sync.checkpoint import BatchOutcome, Checkpoint, RunState
from bot.sync.convert import ConversionError, RecordConverter
from bot.sync.identity import Identities, merged_into
from bot.sync.lease import LeaseLost
from bot.sync.ledger import LedgerEntry
from bot.sync.mapping import passes_sync_filter

log = logging.getLogger(__name__)

BATCH_SIZE = 300
EMAIL_FIELD = "emailaddress1"
# Request-level Marketo errors caused by the batch's own content: its records are reported as
# failed and the sync goes on. Any other error (quota, access, outage) pauses the run instead.
CONTENT_ERROR_CODES = frozenset({"609", "1001", "1003", "1006", "1007"})
UNEXPECTED = ("The sync hit an unexpected error. It stopped at its last checkpoint; press Resume to continue, "
              "or contact the bot's operators if it recurs.")


class Page(Protocol):
    records: list[dict]
    link: str | None
    next_link: str | None
    delta_link: str | None


class PageSource(Protocol):
    def iter_pages(
        self, entity: str, select: list[str], *, track_changes: bool = True, start_link: str | None = None
    ) -> Iterator[Page]: ...


class RecordResult(Protocol):
    status: str
    reasons: Sequence[Any]


Writer = Callable[[list[dict]], Sequence[RecordResult]]
Lookup = Callable[[list[str], list[str]], list[dict]]
Settle = Callable[["Prepared"], None]


@dataclass
class Outcome:
    """How the pipeline ended: `done`, `stopped` (cancel/lease), `paused` or `failed`."""

    kind: str
    message: str | None = None
    delta_link: str | None = None


@dataclass
class Prepared:
    """Records read from Dataverse made ready for Marketo, and what was left out (filtered) or failed (conversion).

    The one preparation of records, shared by the initial sync's batches and incremental pages."""

    plan: EntityPlan
    convert: RecordConverter
    records: list[dict] = field(default_factory=list)
    keys: list[tuple[str, str | None]] = field(default_factory=list)  # (Dataverse id, email) per record
    read: int = 0
    filtered_out: int = 0
    failures: list[LedgerEntry] = field(default_factory=list)
    identities: Identities = field(default_factory=Identities)

    def add(self, record: dict) -> None:
        """A record merged away in Dynamics is not written (counted as left out): its person follows the master's."""
        self.read += 1
        master = merged_into(record)
        if master is not None:
            self.identities.merged_into[record_key(record, self.plan.entity)[0]] = master
            self.filtered_out += 1
            return
        prepared = prepare(record, self.plan, self.convert)
        if prepared is None:
            self.filtered_out += 1
        elif isinstance(prepared, LedgerEntry):
            self.failures.append(prepared)
        else:
            key = record_key(record, self.plan.entity)
            self.records.append(prepared)
            self.keys.append(key)
            self.identities.note(self.plan.entity, key[0], record)


@dataclass
class _Batch(Prepared):
    seq: int = 0
    end_link: str | None = None
    end_offset: int = 0


@dataclass(frozen=True)
class MarketoTarget:
    """Where an entity's batches go. `lookup(ids, fields)` reads records back by their Dynamics id; with it,
    a batch a dead job left in flight is checked before it is sent again (see `EntitySync._unapplied`)."""

    write: Writer
    lookup: Lookup | None = None
    calls_made: Callable[[], int] = lambda: 0
    settle: Settle = lambda prepared: None  # makes Marketo's persons ready for a batch (`bot.sync.people`)


@dataclass(frozen=True)
class Booking:
    """Where progress is booked: the run's checkpoints under this job's lease, until `stop` is set.
    `started_at` is the run's start: a person Marketo created after it was created by this run."""

    state: RunState
    lease: Lease
    stop: threading.Event
    started_at: float = 0.0
    on_progress: Callable[[], None] = lambda: None


@dataclass
class _End:
    delta_link: str | None


def error_code(exc: BaseException) -> str:
    return str(getattr(exc, "code", "") or type(exc).__name__)


def is_content_error(exc: BotError) -> bool:
    return error_code(exc) in CONTENT_ERROR_CODES


class EntitySync:
    """Runs one entity's initial sync from its checkpoint until done, stopped or paused."""

    def __init__(self, plan: EntityPlan, source: PageSource, target: MarketoTarget, booking: Booking, *,
                 writers: int = 5, batch_size: int = BATCH_SIZE, select: list[str] | None = None) -> None:
        """`select`: the columns to read, when more than `plan` writes (a backfill reads the whole plan,
        so that its delta link covers every column)."""
        self.plan = plan
        self.select = select or plan.select
        self.entity = plan.entity
        self.source = source
        self.write = target.write
        self.lookup = target.lookup
        self.calls_made = target.calls_made
        self.settle = target.settle
        self.state = booking.state
        self.lease = booking.lease
        self.stop = booking.stop
        self.started_at = booking.started_at
        self.on_progress = booking.on_progress
        self.writers = max(1, writers)
        self.batch_size = batch_size
        self._convert = RecordConverter(plan)
        self._queue: queue.Queue[_Batch | _End] = queue.Queue(maxsize=self.writers * 2)
        self._suspect: set[int] = set()
        self._lock = threading.Lock()
        self._calls_booked = self.calls_made()
        self._failure: Outcome | None = None
        self._redis_error: Exception | None = None
        self._delta_link: str | None = None

    # -- the run --------------------------------------------------------------------------------------
    def run(self) -> Outcome:
        """Raises redis' ConnectionError or TimeoutError, after every thread stopped, when Redis became
        unreachable: an outage is not the sync's failure, and what was booked before it stands."""
        ckpt = self.state.load(self.entity)
        self._suspect = {seq for seq in self.state.inflight(self.entity) if seq >= ckpt.seq and seq not in ckpt.done}
        reader = threading.Thread(target=carried(self._guard), args=(self._read, ckpt), name="sync-reader",
                                  daemon=True)
        pool = [
            threading.Thread(target=carried(self._guard), args=(self._write_loop,), name=f"sync-writer-{i}",
                             daemon=True)
            for i in range(self.writers)
        ]
        reader.start()
        for thread in pool:
            thread.start()
        reader.join()
        for thread in pool:
            thread.join()
        if self._redis_error is not None:
            raise self._redis_error  # nothing can be booked: the job ends, a new one resumes from the checkpoint
        if self._failure is not None:
            return self._failure
        if self.stop.is_set():
            return Outcome("stopped")
        return Outcome("done", delta_link=self._delta_link)

    def _guard(self, target: Callable[..., None], *args: Any) -> None:
        """Turn any error in a pipeline thread into the run's outcome and stop the other threads."""
        try:
            target(*args)
        except LeaseLost:
            self._halt(Outcome("stopped", "lease lost"))
        except REDIS_UNAVAILABLE as exc:
            log.warning("sync %s stops: Redis is unreachable (%s)", self.entity, exc)
            with self._lock:
                self._redis_error = self._redis_error or exc
            self.stop.set()
        except BotError as exc:
            log.warning("sync %s paused: %s", self.entity, exc)
            self._halt(Outcome("paused", exc.user_message))
        except Exception:
            log.exception("sync %s failed", self.entity)
            self._halt(Outcome("failed", UNEXPECTED))

    def _halt(self, outcome: Outcome) -> None:
        with self._lock:
            if self._failure is None:
                self._failure = outcome
        self.stop.set()

    # -- reading ----------------------------------------------------------------------------------------
    def _read(self, ckpt: Checkpoint) -> None:
        log.info("sync %s: reading from batch %d", self.entity.value, ckpt.seq)
        for batch in self._batches(ckpt):
            if batch.seq in ckpt.done:
                continue  # booked before a crash: already counted, not written again
            if not self._put(batch):
                return
        self._put(_End(self._delta_link))

    def _batches(self, ckpt: Checkpoint) -> Iterator[_Batch]:
        """Cut batches from the resume point; the cut depends only on the records, so it is repeatable."""
        plan, seq = self.plan, ckpt.seq
        batch = self._batch(seq)
        pages = self.source.iter_pages(self.entity.value, self.select, track_changes=plan.change_tracking,
                                       start_link=ckpt.link)
        skip = ckpt.offset
        last: Page | None = None
        for page in pages:
            if self.stop.is_set():
                return
            last = page
            records = page.records
            for index in range(skip, len(records)):
                batch.add(records[index])
                if len(batch.records) == self.batch_size:
                    batch.end_link, batch.end_offset = position(page, index + 1)
                    yield batch
                    seq += 1
                    batch = self._batch(seq)
            skip = 0
            if page.delta_link:
                self._delta_link = page.delta_link
        if batch.read and last is not None:
            batch.end_link, batch.end_offset = last.link, len(last.records)
            yield batch

    def _batch(self, seq: int) -> _Batch:
        return _Batch(self.plan, self._convert, seq=seq)

    def _put(self, item: _Batch | _End) -> bool:
        while not self.stop.is_set():
            try:
                self._queue.put(item, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    # -- writing ----------------------------------------------------------------------------------------
    def _write_loop(self) -> None:
        while not self.stop.is_set():
            try:
                item = self._queue.get(timeout=0.2)
            except queue.Empty:
                continue
            if isinstance(item, _End):
                self._queue.put(item)  # let the other writers see the end too
                return
            if self.stop.is_set():
                return
            self._book(self._send(item))
            self.on_progress()

    def _send(self, batch: _Batch) -> BatchOutcome:
        outcome = BatchOutcome(seq=batch.seq, end_link=batch.end_link, end_offset=batch.end_offset,
                               read=batch.read, filtered_out=batch.filtered_out,
                               failed=len(batch.failures), failures=list(batch.failures))
        self.settle(batch)
        if not batch.records:
            return outcome
        records, keys = batch.records, batch.keys
        if batch.seq in self._suspect:
            records, keys = self._unapplied(batch, outcome)
            if not records:
                return outcome
        self.state.mark_inflight(self.entity, batch.seq)
        try:
            results = self.write(records)
        except BotError as exc:
            if not is_content_error(exc):
                raise
            fail_all(outcome, self.entity, keys, error_code(exc), exc.user_message)
            return outcome
        tally(outcome, self.entity, keys, results)
        return outcome

    def _unapplied(self, batch: _Batch, outcome: BatchOutcome) -> tuple[list[dict], list[tuple[str, str | None]]]:
        """The records of a batch left in flight by a dead job that Marketo does not hold yet.

        A record Marketo already holds with exactly these values needs no write, whoever wrote it, so
        skipping it is always correct; it counts as created when Marketo created the person after this
        run started. Anything unsure (no lookup, a read error, a value that compares unequal) is resent
        and counted in `rewritten_records`; a record Marketo lacks entirely was never written, so it is not.
        """
        rows: dict[str, dict] | None = None
        if self.lookup is not None:
            id_field = self.plan.id_field
            fields = sorted({name for record in batch.records for name in record} | {"createdAt"})
            try:
                rows = {str(row.get(id_field)): row for row in self.lookup([key[0] for key in batch.keys], fields)}
            except BotError:
                rows = None
        if rows is None:
            outcome.rewritten_records = len(batch.records)
            return batch.records, batch.keys
        records, keys = [], []
        for record, key in zip(batch.records, batch.keys, strict=True):
            row = rows.get(key[0])
            if row is not None and all(same_value(row.get(name), value) for name, value in record.items()):
                if _created_after(row.get("createdAt"), self.started_at):
                    outcome.created += 1
                else:
                    outcome.updated += 1
                continue
            outcome.rewritten_records += row is not None
            records.append(record)
            keys.append(key)
        return records, keys

    def _book(self, outcome: BatchOutcome) -> None:
        with self._lock:
            calls = self.calls_made()
            outcome.api_calls, self._calls_booked = calls - self._calls_booked, calls
        if self.state.book(self.entity, outcome, self.lease):
            metrics.count_booked(self.entity.value, outcome.read, outcome.created + outcome.updated,
                                 outcome.failed + outcome.skipped)


def prepare(record: dict, plan: EntityPlan, convert: RecordConverter | None = None) -> dict | LedgerEntry | None:
    """The Marketo input for a record; None when the sync filter leaves it out; a ledger entry when
    its values cannot be converted. Pass `convert` (built once for `plan`) when preparing many records."""
    if not passes_sync_filter(record, plan.filter_attribute):
        return None
    try:
        return (convert or RecordConverter(plan))(record)
    except ConversionError as exc:
        record_id, email = record_key(record, plan.entity)
        return LedgerEntry(entity=plan.entity.value, id=record_id, email=email, code="conversion",
                           message=exc.user_message)


def record_key(record: dict, entity: Entity) -> tuple[str, str | None]:
    """(Dataverse id, email): what the failure report shows for a record."""
    return str(record.get(entity.primary_id, "")), record.get(EMAIL_FIELD)


def tally(outcome: BatchOutcome, entity: Entity, keys: Sequence[tuple[str, str | None]],
          results: Sequence[RecordResult]) -> None:
    """Count Marketo's per-record results; every skipped record goes to the ledger with its reason."""
    for (record_id, email), result in zip(keys, results, strict=True):
        if result.status == "created":
            outcome.created += 1
        elif result.status == "updated":
            outcome.updated += 1
        else:
            code, message = _reason(result)
            outcome.skipped += 1
            outcome.failures.append(LedgerEntry(entity=entity.value, id=record_id, email=email,
                                                code=code, message=message))


def fail_all(outcome: BatchOutcome, entity: Entity, keys: Sequence[tuple[str, str | None]], code: str,
             message: str) -> None:
    outcome.failed += len(keys)
    outcome.failures.extend(LedgerEntry(entity=entity.value, id=record_id, email=email, code=code, message=message)
                            for record_id, email in keys)


def same_value(stored: Any, sent: Any) -> bool:
    """Marketo may echo a value in another form (case of an email, 5 vs 5.0, date formats)."""
    if stored == sent:
        return True
    if stored is None or sent is None:
        return False
    if isinstance(sent, bool) or isinstance(stored, bool):
        return str(stored).lower() == str(sent).lower()
    try:
        return float(stored) == float(sent)
    except (TypeError, ValueError):
        pass
    left, right = str(stored).strip(), str(sent).strip()
    instant = _instant(left)
    return left.lower() == right.lower() or (instant is not None and instant == _instant(right))


def _instant(text: str) -> float | None:
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _created_after(created_at: Any, started_at: float) -> bool:
    instant = _instant(str(created_at)) if created_at else None
    return instant is not None and instant >= int(started_at)


def position(page: Page, offset: int) -> tuple[str | None, int]:
    """A resume point after `offset` records of `page`; the end of a page is the start of the next."""
    if offset >= len(page.records) and page.next_link:
        return page.next_link, 0
    return page.link, offset


def _reason(result: RecordResult) -> tuple[str, str]:
    reasons = list(result.reasons or [])
    if not reasons:
        return "skipped", "Marketo skipped the record without giving a reason."
    first = reasons[0]
    code = str(getattr(first, "code", "") or "")
    message = "; ".join(str(getattr(r, "message", r)) for r in reasons)
    return code or "skipped", message
