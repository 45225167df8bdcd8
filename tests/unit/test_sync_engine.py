"""The sync pipeline against small in-memory fakes of Dataverse and Marketo (Redis is real)."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest

from bot.dynamics.errors import DataverseAccessDenied
from bot.marketo.errors import DailyQuotaExceeded, MarketoFatal
from bot.models import Entity, EntityPlan, EntityProgress, FieldMapping, RunStatus, SyncRun
from bot.store import Store
from bot.sync.checkpoint import BatchOutcome, Checkpoint, RunState
from bot.sync.engine import Booking, EntitySync, MarketoTarget
from bot.sync.lease import LeaseLost
from bot.sync.ledger import LedgerEntry

FILTER = "new_synctomkto"


def lead_plan(entity: Entity = Entity.lead) -> EntityPlan:
    mappings = [
        FieldMapping(source="emailaddress1", read_name="emailaddress1", attribute_type="StringType",
                     marketo_name="email", marketo_type="email", standard=True),
        FieldMapping(source="firstname", read_name="firstname", attribute_type="StringType",
                     marketo_name="firstName", marketo_type="string", standard=True),
    ]
    return EntityPlan(entity=entity, mappings=mappings, id_field=entity.marketo_id_field, filter_attribute=FILTER)


def make_records(n: int, entity: Entity = Entity.lead) -> list[dict]:
    """Every 7th record opts out (False), every 5th has no flag; every 11th has a bad email."""
    records = []
    for i in range(n):
        record = {entity.primary_id: f"{entity.value}-{i:06d}", "firstname": f"Name{i}",
                  "emailaddress1": f"bad email {i}" if i % 11 == 3 else f"p{i % 40}@example.com"}
        if i % 7 != 0:
            record[FILTER] = None if i % 5 == 0 else True
        else:
            record[FILTER] = False
        records.append(record)
    return records


def expected_kept(records: list[dict]) -> list[dict]:
    return [r for r in records if r.get(FILTER) is not False]


@dataclass
class FakePage:
    records: list[dict]
    link: str | None
    next_link: str | None
    delta_link: str | None


class FakeDataverse:
    """Pages of `page_size` records; links are `page:<n>`, the delta link sits on the last page."""

    def __init__(self, records: list[dict], page_size: int = 70) -> None:
        self.records = records
        self.page_size = page_size
        self.pages_served: list[str | None] = []

    def iter_pages(self, entity: str, select: list[str], *, track_changes: bool = True,
                   start_link: str | None = None):
        number = int(start_link.split(":")[1]) if start_link else 0
        while True:
            chunk = self.records[number * self.page_size:(number + 1) * self.page_size]
            more = (number + 1) * self.page_size < len(self.records)
            link = f"page:{number}" if number else None
            self.pages_served.append(link)
            yield FakePage(chunk, link, f"page:{number + 1}" if more else None, None if more else "delta:1")
            if not more:
                return
            number += 1

    def count(self, entity: str, *, filter_attribute: str | None = None) -> int:
        return len(expected_kept(self.records)) if filter_attribute else len(self.records)


@dataclass
class Reason:
    code: str
    message: str


@dataclass
class Result:
    status: str
    id: int | None = None
    reasons: list[Reason] = field(default_factory=list)


class FakeMarketo:
    """Upserts keyed on the lookup field; skips emails with a space (1003). Thread-safe."""

    def __init__(self) -> None:
        self.rows: dict[str, dict] = {}
        self.received = 0
        self.calls_made = 0
        self.lock = threading.Lock()
        self.before_call = lambda n: None  # hook: called with the call number, may raise

    def sync_leads(self, records: list[dict], lookup_field: str, action: str = "createOrUpdate") -> list[Result]:
        assert len(records) <= 300
        with self.lock:
            self.calls_made += 1
            number = self.calls_made
        self.before_call(number)
        results = []
        with self.lock:
            self.received += len(records)
            for record in records:
                if " " in record.get("email", ""):
                    results.append(Result("skipped", reasons=[Reason("1003", "Invalid email")]))
                    continue
                key = record[lookup_field]
                status = "updated" if key in self.rows else "created"
                self.rows.setdefault(key, {"createdAt": datetime.now(UTC).isoformat()}).update(record)
                results.append(Result(status, id=len(self.rows)))
        return results

    def get_leads(self, filter_type: str, values: list[str], fields: list[str]) -> list[dict]:
        with self.lock:
            self.calls_made += 1
            return [{f: self.rows[v].get(f) for f in fields} for v in values if v in self.rows]

    def sync_companies(self, records: list[dict]) -> list[Result]:
        return self.sync_leads(records, "externalCompanyId")


def new_run(store: Store, entities: tuple[Entity, ...] = (Entity.lead,)) -> RunState:
    run = SyncRun(team_id="T1", connection_id="c1", requester="U1", status=RunStatus.running,
                  entities=[EntityProgress(entity=e) for e in entities])
    store.save_run(run)
    state = RunState(store, "T1", run.id)
    for entity in entities:
        state.save(Checkpoint(entity=entity))
    return state


def run_engine(state: RunState, source: FakeDataverse, marketo: FakeMarketo, *, writers: int = 4,
               batch_size: int = 20, entity: Entity = Entity.lead, lookup=None):
    lease = state.lease("c1", entity, ttl=10)
    assert lease.take()
    try:
        target = MarketoTarget(lambda recs: marketo.sync_leads(recs, entity.marketo_id_field), lookup,
                               calls_made=lambda: marketo.calls_made)
        booking = Booking(state, lease, threading.Event(), started_at=state.run().started_at)
        sync = EntitySync(lead_plan(entity), source, target, booking, writers=writers, batch_size=batch_size)
        return sync.run()
    finally:
        lease.release()


def progress_of(state: RunState, entity: Entity = Entity.lead) -> EntityProgress:
    return next(p for p in state.run().entities if p.entity == entity)


def test_full_sync_writes_every_kept_record_once_with_exact_counters(store: Store) -> None:
    records = make_records(1000)
    state = new_run(store)
    marketo = FakeMarketo()
    outcome = run_engine(state, FakeDataverse(records), marketo)
    assert outcome.kind == "done" and outcome.delta_link == "delta:1"
    kept = expected_kept(records)
    good = [r for r in kept if " " not in r["emailaddress1"]]
    assert set(marketo.rows) == {r["leadid"] for r in good}
    for r in good:
        row = {k: v for k, v in marketo.rows[r["leadid"]].items() if k != "createdAt"}
        assert row == {"dynamicsLeadId": r["leadid"], "email": r["emailaddress1"], "firstName": r["firstname"]}
    progress = progress_of(state)
    assert progress.read == 1000
    assert progress.filtered_out == len(records) - len(kept)
    assert (progress.created, progress.updated) == (len(good), 0)
    assert progress.skipped == len(kept) - len(good)
    assert state.run().api_calls == marketo.calls_made
    skips = list(state.ledger)
    assert {s.id for s in skips} == {r["leadid"] for r in kept if " " in r["emailaddress1"]}
    assert all(s.code == "1003" and s.email and s.message == "Invalid email" for s in skips)
    ckpt = state.load(Entity.lead)
    assert ckpt.done == {} and ckpt.seq == -(-len(kept) // 20)


def test_booking_advances_the_contiguous_prefix_and_is_idempotent(store: Store) -> None:
    state = new_run(store)
    lease = state.lease("c1", Entity.lead, ttl=10)
    assert lease.take()

    def outcome(seq: int) -> BatchOutcome:
        return BatchOutcome(seq=seq, end_link=f"page:{seq}", end_offset=seq + 1, read=10, created=9, skipped=1,
                            failures=[LedgerEntry(entity="lead", id=f"x{seq}", code="1003", message="bad")])

    assert state.book(Entity.lead, outcome(2), lease)
    assert state.book(Entity.lead, outcome(1), lease)
    ckpt = state.load(Entity.lead)
    assert (ckpt.seq, ckpt.link, sorted(ckpt.done)) == (0, None, [1, 2])
    assert state.book(Entity.lead, outcome(0), lease)
    ckpt = state.load(Entity.lead)
    assert (ckpt.seq, ckpt.link, ckpt.offset, ckpt.done) == (3, "page:2", 3, {})
    assert not state.book(Entity.lead, outcome(1), lease)  # a rewrite of a booked batch counts nothing
    progress = progress_of(state)
    assert (progress.read, progress.created, progress.skipped) == (30, 27, 3)
    assert [e.id for e in state.ledger] == ["x2", "x1", "x0"]
    lease.release()
    with pytest.raises(LeaseLost):
        state.book(Entity.lead, outcome(3), lease)


class Crash(Exception):
    """Stands in for the worker dying: the engine stops without booking the batch."""


def test_resume_after_a_crash_rewrites_only_unbooked_batches_and_counts_exactly(store: Store) -> None:
    records = make_records(2000)
    kept = expected_kept(records)
    state = new_run(store)
    marketo = FakeMarketo()
    source = FakeDataverse(records, page_size=130)

    def crash_on_20th(number: int) -> None:
        if number == 20:
            raise Crash()

    marketo.before_call = crash_on_20th
    first = run_engine(state, source, marketo, writers=4)
    assert first.kind == "failed"
    ckpt = state.load(Entity.lead)
    booked_before = progress_of(state).written
    assert 0 < booked_before < len(kept)
    inflight = state.inflight(Entity.lead)
    assert inflight and all(seq >= ckpt.seq and seq not in ckpt.done for seq in inflight)

    marketo.before_call = lambda n: None
    received_before = marketo.received
    source.pages_served.clear()
    second = run_engine(state, source, marketo, writers=4)
    assert second.kind == "done"
    assert source.pages_served[0] == ckpt.link  # the read resumed at the checkpoint's page
    progress = progress_of(state)
    assert progress.read == len(records) and progress.filtered_out == len(records) - len(kept)
    assert progress.written == len(kept)
    assert progress.created + progress.updated == len([r for r in kept if " " not in r["emailaddress1"]])
    assert progress.updated == 0  # the crashed batch never reached Marketo, so nothing was written twice
    assert marketo.received - received_before == len(kept) - booked_before
    assert state.ledger.count() == len(list(state.ledger)) == progress.skipped


def _crash_after_applying(state: RunState, records: list[dict], marketo: FakeMarketo) -> None:
    """The worst crash: Marketo applied batch 4, the worker died before booking it."""
    def apply_then_die(recs: list[dict]) -> list[Result]:
        results = marketo.sync_leads(recs, "dynamicsLeadId")
        if marketo.calls_made == 5:
            raise Crash()
        return results

    lease = state.lease("c1", Entity.lead, ttl=10)
    assert lease.take()
    sync = EntitySync(lead_plan(), FakeDataverse(records), MarketoTarget(apply_then_die),
                      Booking(state, lease, threading.Event()), writers=1, batch_size=20)
    assert sync.run().kind == "failed"
    lease.release()
    assert state.inflight(Entity.lead) == {4}


def _crashed_after_applying(store: Store) -> tuple[list[dict], list[dict], list[dict], RunState, FakeMarketo]:
    """600 records, a run whose worker died after Marketo applied batch 4 but before it was booked."""
    records = make_records(600)
    kept = expected_kept(records)
    good = [r for r in kept if " " not in r["emailaddress1"]]
    state = new_run(store)
    marketo = FakeMarketo()
    _crash_after_applying(state, records, marketo)
    return records, kept, good, state, marketo


def test_an_applied_but_unbooked_batch_is_checked_not_rewritten(store: Store) -> None:
    records, kept, good, state, marketo = _crashed_after_applying(store)
    received = marketo.received
    assert run_engine(state, FakeDataverse(records), marketo, writers=3, lookup=lambda ids, fields: marketo.get_leads("dynamicsLeadId", ids, fields)).kind == "done"
    progress = progress_of(state)
    assert progress.written == len(kept)
    assert (progress.created, progress.updated) == (len(good), 0)  # exact, as if nothing had happened
    assert len(marketo.rows) == len(good)
    skipped_in_batch = sum(1 for r in kept[80:100] if " " in r["emailaddress1"])
    assert marketo.received - received == len(kept) - 80 - (20 - skipped_in_batch)  # only its skips resent
    ckpt = state.load(Entity.lead)
    assert (ckpt.rewritten_batches, ckpt.rewritten_records) == (0, 0)  # its skips were never written
    assert state.inflight(Entity.lead) == set()


def test_without_a_lookup_the_unbooked_batch_is_resent_once(store: Store) -> None:
    records, kept, good, state, marketo = _crashed_after_applying(store)
    assert run_engine(state, FakeDataverse(records), marketo, writers=3).kind == "done"
    progress = progress_of(state)
    assert progress.written == len(kept)
    assert len(marketo.rows) == len(good) == progress.created + progress.updated
    assert marketo.received == len(kept) + 20  # exactly one batch went to Marketo twice
    assert 0 < progress.updated <= 20  # its records come back "updated" on the rewrite
    assert (state.load(Entity.lead).rewritten_batches, state.load(Entity.lead).rewritten_records) == (1, 20)


def test_daily_quota_pauses_and_a_resume_finishes_exactly(store: Store) -> None:
    records = make_records(1500)
    state = new_run(store)
    marketo = FakeMarketo()

    def quota_after_10(number: int) -> None:
        if number > 10:
            raise DailyQuotaExceeded("607", "Daily quota reached")

    marketo.before_call = quota_after_10
    paused = run_engine(state, FakeDataverse(records), marketo)
    assert paused.kind == "paused" and "daily API quota" in paused.message
    marketo.before_call = lambda n: None
    assert run_engine(state, FakeDataverse(records), marketo).kind == "done"
    kept = expected_kept(records)
    progress = progress_of(state)
    assert progress.written == len(kept) and progress.read == len(records)
    assert len(marketo.rows) == progress.created


def test_a_request_level_content_error_fails_the_batch_records_and_goes_on(store: Store) -> None:
    records = make_records(200)
    state = new_run(store)
    marketo = FakeMarketo()

    def bad_second_call(number: int) -> None:
        if number == 2:
            raise MarketoFatal("1003", "Invalid value")

    marketo.before_call = bad_second_call
    assert run_engine(state, FakeDataverse(records), marketo, writers=1).kind == "done"
    progress = progress_of(state)
    assert progress.failed == 20
    failed = [e for e in state.ledger if e.code == "1003" and e.message != "Invalid email"]
    assert len(failed) == 20
    assert progress.written == len(expected_kept(records))


def test_conversion_errors_are_reported_not_dropped(store: Store) -> None:
    records = make_records(50)
    plan = lead_plan()
    plan.mappings.append(FieldMapping(source="numberofemployees", read_name="numberofemployees",
                                      attribute_type="IntegerType", marketo_name="numberOfEmployees",
                                      marketo_type="integer", standard=True))
    records[8]["numberofemployees"] = "many"
    state = new_run(store)
    marketo = FakeMarketo()
    lease = state.lease("c1", Entity.lead, ttl=10)
    assert lease.take()
    sync = EntitySync(plan, FakeDataverse(records), MarketoTarget(lambda r: marketo.sync_leads(r, "dynamicsLeadId")),
                      Booking(state, lease, threading.Event()), writers=2, batch_size=10)
    assert sync.run().kind == "done"
    entries = {e.id: e for e in state.ledger}
    assert entries["lead-000008"].code == "conversion"
    assert progress_of(state).failed == 1


class DeniedAfter(FakeDataverse):
    """Dataverse refuses (403) from the given page on, until `allow()`."""

    def __init__(self, records: list[dict], page: int) -> None:
        super().__init__(records)
        self.denied_from = page

    def iter_pages(self, entity: str, select: list[str], **kwargs):
        for number, page in enumerate(super().iter_pages(entity, select, **kwargs)):
            if self.denied_from is not None and number >= self.denied_from:
                raise DataverseAccessDenied(403, "0x80040220", "PrivilegeDenied")
            yield page


def test_dataverse_access_denied_pauses_with_a_plain_message_and_resumes(store: Store) -> None:
    records = make_records(700)
    state = new_run(store)
    marketo = FakeMarketo()
    source = DeniedAfter(records, page=3)
    paused = run_engine(state, source, marketo)
    assert paused.kind == "paused" and "Marketo Sync User" in paused.message
    assert 0 < progress_of(state).read < len(records)
    source.denied_from = None
    assert run_engine(state, source, marketo).kind == "done"
    assert progress_of(state).read == len(records)
    assert progress_of(state).written == len(expected_kept(records))
