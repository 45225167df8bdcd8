"""Checkpoints and exact counters of a sync run, in Redis.

Batches are numbered in read order (`seq`) and written by several threads, so they finish out
of order. A finished batch is *booked* in one transaction that (a) adds its counters to the
run record, (b) appends its skipped records to the ledger and (c) records it in the checkpoint.
The checkpoint's resume point (`link`, `offset`) is the end of the longest contiguous prefix
of booked batches; batches booked beyond it are remembered in `done` and skipped on resume.
Batch boundaries are a pure function of the resume point, so a resumed read cuts the same
batches with the same numbers: only batches in flight when the worker died are written again,
and booking is idempotent per `seq`, so counters stay exact.

Every booking also checks the entity lock (a lease renewed by the running job, see `lease.py`): a
job that lost its lease (stalled past the lease, another job took over) can no longer change anything.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from pydantic import BaseModel, Field

from bot.models import Counts, Entity, RunStatus, SyncRun, now
from bot.store import Lease, RunTx, Store
from bot.sync.lease import LeaseLost
from bot.sync.ledger import Ledger, LedgerEntry


class EntityState(StrEnum):
    queued = "queued"
    running = "running"
    paused = "paused"
    done = "done"
    cancelled = "cancelled"
    failed = "failed"


BACKFILL = "backfill"  # a run's kind: the columns added after go-live (`bot.sync.backfill`)


def lease_part(kind: str, entity: Entity) -> str:
    """The lease an entity of a run takes: the entity's sync lease, shared with the incremental cycles,
    except a backfill's, which has its own so that the cycles go on while it runs."""
    return f"{entity.value}-{BACKFILL}" if kind == BACKFILL else entity.value


LIVE_STATES = frozenset({EntityState.queued, EntityState.running})
TERMINAL_RUN = frozenset({RunStatus.finished, RunStatus.cancelled, RunStatus.failed})


class BatchMark(BaseModel):
    end_link: str | None
    end_offset: int


class ImportMark(BaseModel):
    """A Bulk Import part uploaded and not yet booked: its job in Marketo and how many rows it holds."""

    batch_id: int
    rows: int


class Checkpoint(BaseModel):
    entity: Entity
    state: EntityState = EntityState.queued
    link: str | None = None  # page link of the resume point (None = the first page)
    offset: int = 0  # records of that page already accounted for
    seq: int = 0  # the next batch number after the contiguous prefix
    done: dict[int, BatchMark] = Field(default_factory=dict)  # booked batches beyond the prefix
    delta_link: str | None = None  # Dataverse change-tracking link, set when the read completed
    job_id: str | None = None  # the RQ job currently responsible for this entity
    attempts: int = 0  # jobs enqueued for this entity so far
    rewritten_batches: int = 0  # batches in flight when a worker died that had to be sent again
    rewritten_records: int = 0  # records of those batches sent again (Marketo lacked their values)
    message: str | None = None
    imports: dict[int, ImportMark] = Field(default_factory=dict)  # Bulk Import parts in Marketo's queue, by seq


class BatchOutcome(Counts):
    """What one batch did, booked as one unit."""

    seq: int
    end_link: str | None
    end_offset: int
    failures: list[LedgerEntry] = Field(default_factory=list)
    api_calls: int = 0
    rewritten_records: int = 0


@dataclass
class Transition:
    run: SyncRun
    before: RunStatus

    @property
    def changed(self) -> bool:
        return self.run.status != self.before


class RunState:
    """Checkpoints, counters and the cancel flag of one run."""

    def __init__(self, store: Store, team_id: str, run_id: str) -> None:
        self.store = store
        self.team_id = team_id
        self.run_id = run_id
        self.records = store.run_records(team_id, run_id, Checkpoint)
        self.ledger = Ledger(store, team_id, run_id)

    def lease(self, connection_id: str, entity: Entity, ttl: float, owner: str = "", kind: str = "initial") -> Lease:
        """The per-entity lease of a run of this `kind` (see `lease_part`)."""
        return self.store.sync_lease(self.team_id, connection_id, lease_part(kind, entity), ttl, owner=owner)

    # -- reads ----------------------------------------------------------------------------------------
    def run(self) -> SyncRun | None:
        return self.store.get_run(self.team_id, self.run_id)

    def load(self, entity: Entity) -> Checkpoint:
        return self.records.checkpoint(entity.value) or Checkpoint(entity=entity)

    def save(self, ckpt: Checkpoint) -> None:
        self.records.put_checkpoint(ckpt.entity.value, ckpt)

    def cancel_requested(self) -> bool:
        return self.records.cancel_requested()

    def request_cancel(self) -> None:
        self.records.request_cancel()

    # -- in-flight batches ----------------------------------------------------------------------------
    def mark_inflight(self, entity: Entity, seq: int) -> None:
        self.records.mark_inflight(entity.value, seq)

    def inflight(self, entity: Entity) -> set[int]:
        """Batches a dead job had sent but not booked: Marketo may or may not have applied them.
        Booking a batch removes it from the set, so what is left after a crash is exactly these."""
        return self.records.inflight(entity.value)

    # -- booking ----------------------------------------------------------------------------------------
    def book(self, entity: Entity, outcome: BatchOutcome, lease: Lease) -> bool:
        """Book one written batch (idempotent per seq). Raises LeaseLost if the lease is gone."""

        def body(tx: RunTx[Checkpoint]) -> tuple[Callable[[RunTx[Checkpoint]], None] | None, bool]:
            if not tx.holds(lease):
                raise LeaseLost()
            ckpt = tx.checkpoint(entity.value) or Checkpoint(entity=entity)
            if outcome.seq < ckpt.seq or outcome.seq in ckpt.done:
                return None, False
            ckpt.done[outcome.seq] = BatchMark(end_link=outcome.end_link, end_offset=outcome.end_offset)
            while ckpt.seq in ckpt.done:
                mark = ckpt.done.pop(ckpt.seq)
                ckpt.link, ckpt.offset, ckpt.seq = mark.end_link, mark.end_offset, ckpt.seq + 1
            run = tx.run()
            progress = next(p for p in run.entities if p.entity == entity)
            progress.add(outcome)
            run.api_calls += outcome.api_calls
            if outcome.rewritten_records:
                ckpt.rewritten_batches += 1
                ckpt.rewritten_records += outcome.rewritten_records

            def writes(w: RunTx[Checkpoint]) -> None:
                w.put_checkpoint(entity.value, ckpt)
                w.put_run(run)
                self.ledger.add_in(w, outcome.failures)
                w.booked(entity.value, outcome.seq)

            return writes, True

        return self.records.transact([entity.value], body, lease=lease)

    # -- entity state and the run's status ------------------------------------------------------------------
    def set_state(
        self,
        entity: Entity,
        state: EntityState,
        message: str | None = None,
        *,
        change: Callable[[Checkpoint], None] | None = None,
        lease: Lease | None = None,
    ) -> Transition:
        """Set one entity's state (plus any `change` to its checkpoint) and re-derive the run's status."""
        run = self.run()
        if run is None:
            raise KeyError(self.run_id)

        def body(tx: RunTx[Checkpoint]) -> tuple[Callable[[RunTx[Checkpoint]], None] | None, Transition]:
            if lease is not None and not tx.holds(lease):
                raise LeaseLost()
            current = tx.run()
            ckpts = {p.entity: tx.checkpoint(p.entity.value) or Checkpoint(entity=p.entity) for p in current.entities}
            ckpt = ckpts[entity]
            ckpt.state = state
            ckpt.message = message
            if change is not None:
                change(ckpt)
            updated = current.model_copy(deep=True)
            derive_status(updated, ckpts, message, cancel=tx.cancel_requested())

            def writes(w: RunTx[Checkpoint]) -> None:
                w.put_checkpoint(entity.value, ckpt)
                w.put_run(updated)

            return writes, Transition(run=updated, before=current.status)

        return self.records.transact([p.entity.value for p in run.entities], body, lease=lease)


def derive_status(run: SyncRun, ckpts: dict[Entity, Checkpoint], message: str | None, *, cancel: bool) -> None:
    """The run's status from its entities': live work wins, then a pause, then failure, then cancel."""
    states = {c.state for c in ckpts.values()}
    for progress in run.entities:
        progress.done = ckpts[progress.entity].state == EntityState.done
    if EntityState.paused in states:
        status = RunStatus.paused
    elif states & LIVE_STATES:
        status = RunStatus.running
    elif EntityState.failed in states:
        status = RunStatus.failed
    elif EntityState.cancelled in states or cancel:
        status = RunStatus.cancelled
    else:
        status = RunStatus.finished
    if status in (RunStatus.paused, RunStatus.failed) and message:
        run.message = message
    elif status == RunStatus.running:
        run.message = None
    if status in TERMINAL_RUN and run.finished_at is None:
        run.finished_at = now()
    run.status = status
