"""Incremental sync: after the initial sync, follow Dataverse change tracking.

Every `INCREMENTAL_SYNC_MINUTES` each synced connection gets one job per entity. The job reads
the stored delta link (`iter_changes`), upserts new and changed records (same filter and
conversion as the initial sync), marks deleted ones on the Marketo person with the boolean
field `dynamicsDeleted` (Marketo's own sync never deletes a person either), and stores the new
delta link only after everything was written, so a crash just repeats the same changes. An
expired change token falls back to a full re-read of that entity (a "resync" run, with its
checkpoints and notices). It takes the same per-entity lock as the initial sync, so the two
never overlap. The schedule is a Redis sorted set (connection → next due time) that any worker's
maintenance thread serves.

Before a cycle writes, the mass-change brake (`brake.py`) screens its changes: too many deletes or
overwrites hold the entity for a team lead, the delta link unchanged. While a backfill of added columns
runs, a cycle writes what its link covers and then takes the backfill's offered link (`backfill.py`).
Records that fail go on the connection's error list (`bot.store.sync_errors`); each cycle first
re-reads up to `RETRY_LIMIT` of them by id and writes them again (`bot.sync.retries`) until they
succeed or reach `SYNC_RETRY_ATTEMPTS`; a record written, deleted or excluded leaves the list
(`_settle_errors`). What a cycle saw feeds the alerts (`bot.alerts`).

Changes made in Dynamics by the sync user (the write-back's own writes, `_modifiedby_value`) are not
sent to Marketo: Marketo's own sync has the same rule, and it keeps the two cycles from echoing.
Every cycle also enqueues the connection's Marketo → Dynamics write-back (`bot.sync.write_back`).
A cycle of opportunities also follows their contact roles, which change without their opportunity
(`bot.sync.role_changes`): those opportunities are written again with their roles.

Values cleared in Dynamics are sent as null, which clears them in Marketo (`send_nulls`).
A table without change tracking is read by a `modifiedon` watermark instead (`_sync_modified_since`, braked too):
what changed since the newest `modifiedon` applied. Deletes are not visible that way.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from rq import Queue

from bot import alerts, metrics
from bot.config import Settings
from bot.crypto import SecretUnreadable
from bot.dynamics.errors import ChangeTokenExpired, DataverseAccessDenied, DataverseUnauthorized, SignInError
from bot.errors import BotError
from bot.marketo.errors import DailyQuotaExceeded
from bot.models import (
    MODIFIED_BY,
    BrakeStatus,
    Connection,
    Counts,
    Entity,
    EntityPlan,
    FlowState,
    MassChangeHold,
)
from bot.store import FailedRecord, Resolution, Store, Watermark
from bot.sync import backfill, brake, opportunities, role_changes
from bot.sync.checkpoint import BatchOutcome
from bot.sync.convert import RecordConverter
from bot.sync.custom_sync import enqueue_custom_objects
from bot.sync.engine import BATCH_SIZE, Prepared, fail_all, is_content_error, record_key, tally
from bot.sync.figures import CycleFigures
from bot.sync.lease import Heartbeat
from bot.sync.ledger import LedgerEntry
from bot.sync.links import linked_writes
from bot.sync.mapping import DELETED_FIELD, PERSON_ENTITIES
from bot.sync.people import People
from bot.sync.ports import SyncServices
from bot.sync.retries import Retried, Rewrite, retry_listed
from bot.sync.runs import JOB_TIMEOUT, RESULT_TTL, start_initial_sync
from bot.sync.watermarks import first_watermark, fresh_pages
from bot.sync.write_back import enqueue_write_back, write_back_plans
from bot.sync.writers import batch_writer

log = logging.getLogger(__name__)

INCREMENTAL_JOB = "bot.sync.entry.incremental_entity_job"
RETRY_LIMIT = BATCH_SIZE  # failed records retried per entity and cycle, the least tried first
# Errors a cycle stops on that an alert explains (the cycle ends "failed" instead of raising).
ALERTED_ERRORS = (SecretUnreadable, SignInError, DataverseAccessDenied, DataverseUnauthorized, DailyQuotaExceeded)


@dataclass
class Seen:
    """Ids a cycle read (written, or failed and booked) and saw deleted: they settle the error list."""

    read: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)


def schedule(store: Store, team_id: str, connection_id: str, settings: Settings, at: float | None = None) -> None:
    due = at if at is not None else time.time() + settings.INCREMENTAL_SYNC_MINUTES * 60
    store.incremental.schedule(team_id, connection_id, due)


def unschedule(store: Store, team_id: str, connection_id: str) -> None:
    store.incremental.unschedule(team_id, connection_id)


def schedule_due(store: Store, queue: Queue, settings: Settings, now: float | None = None) -> list[str]:
    """Enqueue the incremental jobs that are due (each connection moves to its next slot first)."""
    now = time.time() if now is None else now
    enqueued: list[str] = []
    for team_id, connection_id in store.incremental.due(now):
        # Moving the slot forward is atomic: of several workers only one sees it change.
        if not store.incremental.advance(team_id, connection_id, now + settings.INCREMENTAL_SYNC_MINUTES * 60):
            continue
        connection = store.get_connection(team_id, connection_id)
        if connection is None or connection.plan is None:
            store.incremental.unschedule(team_id, connection_id)
            continue
        if not store.ongoing.enabled(team_id, connection_id):
            unschedule(store, team_id, connection_id)  # rescheduled while off (a resync ended): `enable` puts it back
            continue
        people: list[str] = []
        for plan in connection.plan.entities:
            job = queue.enqueue(INCREMENTAL_JOB, team_id, connection_id, plan.entity.value,
                                job_timeout=JOB_TIMEOUT, result_ttl=RESULT_TTL, failure_ttl=RESULT_TTL,
                                description=f"incremental {plan.entity.value} for {connection_id}")
            enqueued.append(job.id)
            people.append(job.id)
        if write_back_plans(connection) and (job_id := enqueue_write_back(queue, team_id, connection_id)):
            enqueued.append(job_id)
        if connection.plan.custom_objects:
            enqueued.append(enqueue_custom_objects(queue, team_id, connection_id, after=people))
    return enqueued


def run_incremental(services: SyncServices, team_id: str, connection_id: str, entity: Entity) -> str:
    """Apply the changes since the stored delta link; returns how it ended."""
    store = services.store
    connection = store.get_connection(team_id, connection_id)
    plan = connection.plan.for_entity(entity) if connection and connection.plan else None
    link = store.delta_links.get(team_id, connection_id, entity.value)
    if connection is None or plan is None or connection.state != FlowState.synced or (plan.change_tracking and not link):
        return "skipped"
    if not store.ongoing.enabled(team_id, connection_id):
        return "disabled"  # turned off after this job was enqueued
    decision = store.holds.get(team_id, connection_id, entity.value)
    if decision is not None and decision.status == BrakeStatus.held:
        return "held"  # a team lead decides first; the delta link waits
    lease = store.sync_lease(team_id, connection_id, entity.value, services.settings.SYNC_LEASE_SECONDS,
                             owner=f"incremental-{connection_id}")
    if not lease.take():
        return "busy"
    offered = store.delta_links.offered(team_id, connection_id, entity.value)
    if plan.change_tracking and link:
        plan = backfill.covered_plan(store, connection, plan, link, offered=offered is not None)
    heartbeat = Heartbeat(lease, 1.0, lambda: False)
    heartbeat.start()
    cycle = CycleFigures(store, team_id, connection_id, entity.value)
    try:
        source = services.dataverse(team_id, connection_id)
        try:
            retried = _retry_failures(services, connection, plan, source)
            screen = _screen(services, connection, plan, decision, source)
            seen = Seen()
            if plan.change_tracking and link is not None:
                outcome, advance = _apply_changes(services, connection, plan, source, link, screen, offered, cycle, seen)
            else:
                start = store.watermarks.get(team_id, connection_id, entity.value) or first_watermark(store, connection)
                if start is None:
                    return "skipped"
                outcome, advance = _sync_modified_since(services, connection, plan, source, start, screen, cycle, seen)
            if entity == Entity.opportunity and not cycle.stopped and not screen.tripped:  # held: nothing more written
                advance = _follow_roles(services, connection, plan, source, outcome, seen, advance)
        except ChangeTokenExpired:
            store.delta_links.forget(team_id, connection_id, entity.value)
            log.warning("change token of %s expired for %s; re-reading it in full", entity.value, connection_id)
            start_initial_sync(store, services.queue, connection, services.notifier, entities=[entity], kind="resync")
            return "resync"
        finally:
            if hasattr(source, "close"):
                source.close()
        if heartbeat.stop.is_set():
            return "lost"  # another job owns the entity now; its delta link (or watermark) stands
        _record(store, team_id, connection_id, entity, outcome)
        _settle_errors(services, connection, entity, outcome, seen, retried)
        if screen.tripped:
            brake.hold(store, services.notifier, services.settings, connection, plan, screen)
            return "held"  # the position stays: the held changes are read again after the decision
        cycle.finished()
        advance()
        if decision is not None:
            store.holds.clear(decision)
        return "disabled" if cycle.stopped else "done"
    except ALERTED_ERRORS as exc:
        return _cycle_failed(services, connection, exc)
    finally:
        cycle.close()
        heartbeat.close()
        lease.release()


def _screen(services: SyncServices, connection: Connection, plan: EntityPlan, decision: MassChangeHold | None,
            source: Any) -> brake.Screen:
    limit = brake.limit_for(services.settings.MASS_CHANGE_LIMIT, brake.entity_count(services.store, connection, plan))
    held_ids = services.store.holds.held_ids(decision) if decision is not None else frozenset()
    if plan.entity not in PERSON_ENTITIES:
        return brake.Screen(plan, limit, None, decision, held_ids, sent=opportunities.as_sent)
    marketo = linked_writes(services, connection.team_id, connection.id, plan, source)
    return brake.Screen(plan, limit, lambda ids, fields: marketo.get_leads(plan.id_field, ids, fields), decision,
                        held_ids, sent=marketo.people_as_sent)


def _apply_changes(services: SyncServices, connection: Connection, plan: EntityPlan, source: Any, link: str,
                   screen: brake.Screen, offered: str | None, cycle: CycleFigures,
                   seen: Seen) -> tuple[BatchOutcome, Callable[[], None]]:
    """Each page's changes through the mass-change brake, then written; and how to keep the new delta link
    (a backfill's `offered` one, when there is one: this cycle started after it ended, so it caught up).
    Switched off meanwhile, the cycle stops after a page and the next one starts from `link` again."""
    marketo = linked_writes(services, connection.team_id, connection.id, plan, source)
    people = People(marketo, services.store, connection)
    convert = RecordConverter(plan, send_nulls=True)
    outcome = BatchOutcome(seq=0, end_link=None, end_offset=0)
    new_link: str | None = None
    for page in source.iter_changes(link, plan.select):
        records = not_ours(services.store, connection, plan.entity, page.records)
        cycle.page_read(records, len(page.deleted_ids))
        seen.read.extend(record_key(r, plan.entity)[0] for r in records)
        seen.deleted.extend(page.deleted_ids)
        prepared = _prepare(plan, convert, records, outcome, people)
        _write_ready(people, marketo, plan, screen.admit(prepared.records, prepared.keys, page.deleted_ids),
                     outcome, source)
        new_link = page.delta_link or new_link
        if not cycle.page_done(outcome):
            break
    _write_ready(people, marketo, plan, screen.finish(), outcome, source)
    cycle.page_done(outcome)  # the brake writes what it kept back (a cycle under its limit) only here
    links, team_id, entity = services.store.delta_links, connection.team_id, plan.entity.value

    def advance() -> None:
        if cycle.stopped:
            return
        if offered:
            links.accept(team_id, connection.id, entity, offered)
        elif new_link:
            links.put(team_id, connection.id, entity, new_link)

    return outcome, advance


def _write_ready(people: People, marketo: Any, plan: EntityPlan, ready: brake.Ready,
                 outcome: BatchOutcome, source: Any) -> None:
    _write(marketo, plan, ready.records, ready.keys, outcome, source=source)
    _mark_deleted(people, marketo, plan, ready.deleted_ids, outcome)
    outcome.skipped += len(ready.discarded)
    outcome.failures.extend(ready.discarded)


def _sync_modified_since(services: SyncServices, connection: Connection, plan: EntityPlan, source: Any,
                         start: Watermark, screen: brake.Screen, cycle: CycleFigures,
                         seen: Seen) -> tuple[BatchOutcome, Callable[[], None]]:
    """One cycle for a table without change tracking: upsert what was modified since the watermark (through
    the brake); and how to keep the new watermark (only after everything was written, like the delta link;
    switched off meanwhile, the watermark keeps what was applied)."""
    marketo = linked_writes(services, connection.team_id, connection.id, plan, source)
    people = People(marketo, services.store, connection)
    convert = RecordConverter(plan, send_nulls=True)
    outcome = BatchOutcome(seq=0, end_link=None, end_offset=0)
    mark = start
    pages = source.iter_modified_since(plan.entity, plan.select, start.modified_on)
    for fresh, page_mark in fresh_pages(pages, start, plan.entity.primary_id):
        theirs = not_ours(services.store, connection, plan.entity, fresh)
        cycle.page_read(theirs)
        seen.read.extend(record_key(r, plan.entity)[0] for r in theirs)
        prepared = _prepare(plan, convert, theirs, outcome, people)
        _write_ready(people, marketo, plan, screen.admit(prepared.records, prepared.keys, []), outcome, source)
        mark = page_mark
        if not cycle.page_done(outcome):
            break
    _write_ready(people, marketo, plan, screen.finish(), outcome, source)
    cycle.page_done(outcome)
    return outcome, lambda: services.store.watermarks.put(connection.team_id, connection.id, plan.entity.value, mark)


def not_ours(store: Store, connection: Connection, entity: Entity, records: list[dict]) -> list[dict]:
    """The records not last modified by the sync user (those hold what the write-back wrote), and those
    the write-back handed over: it wrote them over a person's edit that this cycle must still send."""
    if not connection.sync_user_id:
        return records
    ours = [str(r.get(entity.primary_id)) for r in records if r.get(MODIFIED_BY) == connection.sync_user_id]
    handed = store.write_back.take_handed_over(connection.team_id, connection.id, entity.value, ours)
    return [r for r in records
            if r.get(MODIFIED_BY) != connection.sync_user_id or str(r.get(entity.primary_id)) in handed]


def _follow_roles(services: SyncServices, connection: Connection, plan: EntityPlan, source: Any,
                  outcome: BatchOutcome, seen: Seen, advance: Callable[[], None]) -> Callable[[], None]:
    """Opportunities whose contact roles changed alone are written again with their roles (`role_changes`);
    returns how to keep both positions, the opportunities' and the roles'."""
    changes = role_changes.read_changes(services.store, connection, source, first_watermark(services.store, connection))
    read = set(seen.read)
    again = [i for i in changes.opportunities if i not in read]
    if again:
        _, prepared = _rewrite(services, connection, plan, source, again, outcome)
        seen.read.extend(record_id for record_id, _ in prepared.keys)
        log.info("%d opportunities of %s written again for their changed contact roles", len(prepared.keys),
                 connection.id)

    def keep() -> None:
        advance()
        changes.keep()

    return keep


def _rewrite(services: SyncServices, connection: Connection, plan: EntityPlan, source: Any, ids: list[str],
             outcome: BatchOutcome) -> tuple[dict[str, dict], Prepared]:
    """Re-read `ids` from Dynamics by id and write them like changed records (same filter, conversion and
    persons); returns the records found and what was written of them."""
    found = {record_key(r, plan.entity)[0]: r for r in source.read_by_ids(plan.entity, ids, plan.select)}
    prepared = Prepared(plan, RecordConverter(plan, send_nulls=True))
    for record in found.values():
        prepared.add(record)
    marketo = linked_writes(services, connection.team_id, connection.id, plan, source)
    People(marketo, services.store, connection).settle(plan, prepared.records, prepared.keys, prepared.identities)
    outcome.failures.extend(prepared.failures)
    if prepared.records:
        _write(marketo, plan, prepared.records, prepared.keys, outcome, source=source)
    return found, prepared


def _prepare(plan: EntityPlan, convert: RecordConverter, rows: list[dict], outcome: BatchOutcome,
             people: People) -> Prepared:
    """New and changed Dataverse records made ready for Marketo (same filter, conversion and persons as the
    initial sync)."""
    prepared = Prepared(plan, convert)
    for record in rows:
        prepared.add(record)
    people.settle(plan, prepared.records, prepared.keys, prepared.identities)
    outcome.read += prepared.read
    outcome.filtered_out += prepared.filtered_out
    outcome.failed += len(prepared.failures)
    outcome.failures.extend(prepared.failures)
    return prepared


def _write(marketo: Any, plan: EntityPlan, records: list[dict], keys: list[tuple[str, str | None]],
           outcome: BatchOutcome, action: str = "createOrUpdate", source: Any = None) -> None:
    """`source` (Dataverse) is needed for opportunities, whose contact roles are read when they are written."""
    for start in range(0, len(records), BATCH_SIZE):
        chunk, chunk_keys = records[start:start + BATCH_SIZE], keys[start:start + BATCH_SIZE]
        try:
            results = batch_writer(marketo, plan, action, source)(chunk)
        except BotError as exc:
            if not is_content_error(exc):
                raise
            fail_all(outcome, plan.entity, chunk_keys, str(getattr(exc, "code", "")), exc.user_message)
            continue
        tally(outcome, plan.entity, chunk_keys, results)


def _mark_deleted(people: People, marketo: Any, plan: EntityPlan, deleted_ids: list[str],
                  outcome: BatchOutcome) -> None:
    """Deleted in Dynamics: set `dynamicsDeleted` on the person (updateOnly; never delete or create). Marketo
    companies and opportunities have no such field: a deleted account's company stays, its people are flagged
    instead; a deleted opportunity stays as it was."""
    if not deleted_ids or plan.entity == Entity.opportunity:
        return
    if plan.entity == Entity.account:
        people.flag_account_deletes(deleted_ids)
        return
    _ensure_deleted_field(people.store, marketo)
    records = [{plan.id_field: record_id, DELETED_FIELD.name: True} for record_id in deleted_ids]
    keys: list[tuple[str, str | None]] = [(record_id, None) for record_id in deleted_ids]
    marks = BatchOutcome(seq=0, end_link=None, end_offset=0)
    _write(marketo, plan, records, keys, marks, action="updateOnly")
    outcome.updated += marks.updated + marks.created
    # A person never synced (filtered out, or created and deleted between two runs) has nothing to mark.
    outcome.failures.extend(f for f in marks.failures if f.code != "1004")
    outcome.skipped += sum(1 for f in marks.failures if f.code != "1004")


def _ensure_deleted_field(store: Store, marketo: Any) -> None:
    if store.marketo_deleted_field_created():
        return
    marketo.create_lead_fields([DELETED_FIELD])  # idempotent: the client never re-creates a field
    store.mark_marketo_deleted_field_created()


def _record(store: Store, team_id: str, connection_id: str, entity: Entity, outcome: BatchOutcome) -> None:
    counts = {name: getattr(outcome, name) for name in Counts.model_fields}
    store.incremental.record(team_id, connection_id, entity.value, counts)
    metrics.count_booked(entity.value, outcome.read, outcome.created + outcome.updated, outcome.failed + outcome.skipped)


# -- the error list: retries, booking, alerts ---------------------------------------------------------------
def _retry_failures(services: SyncServices, connection: Connection, plan: EntityPlan, source: Any) -> Retried:
    """Re-read the listed failures from Dynamics by id and write them again (`bot.sync.retries`)."""

    def rewrite(ids: list[str]) -> Rewrite:
        outcome = BatchOutcome(seq=0, end_link=None, end_offset=0)
        found, prepared = _rewrite(services, connection, plan, source, ids, outcome)
        return Rewrite(found=list(found), sent=[record_id for record_id, _ in prepared.keys],
                       failures=_failed_records(outcome.failures))

    return retry_listed(services.store, connection.team_id, connection.id, plan.entity.value,
                        services.settings.SYNC_RETRY_ATTEMPTS, RETRY_LIMIT, rewrite)


def _failed_records(failures: list[LedgerEntry]) -> list[FailedRecord]:
    return [FailedRecord(f.id, f.email, f.code, f.message) for f in failures]


def _settle_errors(services: SyncServices, connection: Connection, entity: Entity, outcome: BatchOutcome,
                   seen: Seen, retried: Retried) -> None:
    """Book the cycle's failures on the error list, take off what it wrote or saw deleted, and tell the
    alerts what the cycle showed."""
    store, team_id = services.store, connection.team_id
    failed = {f.id for f in outcome.failures}
    store.sync_errors.resolve(team_id, connection.id, entity.value, [i for i in seen.read if i not in failed],
                              Resolution.retried_ok)
    store.sync_errors.resolve(team_id, connection.id, entity.value, [i for i in seen.deleted if i not in failed],
                              Resolution.deleted)
    store.sync_errors.book(team_id, connection.id, entity.value, _failed_records(outcome.failures), time.time())
    discarded = [f.id for f in outcome.failures if f.code == brake.DISCARDED_CODE]
    store.sync_errors.never_retry(team_id, connection.id, entity.value, discarded, services.settings.SYNC_RETRY_ATTEMPTS)
    read = outcome.read + retried.tried
    failures = len(outcome.failures) + len(retried.failures)
    wrote = retried.wrote or outcome.created + outcome.updated > 0
    observations = alerts.cycle_observations(entity.value, read, failures, wrote,
                                             services.settings.ALERT_FAILURE_RATE)
    alerts.apply(store, services.notifier, team_id, connection.id, observations)


def _cycle_failed(services: SyncServices, connection: Connection, exc: BaseException) -> str:
    """A cycle stopped on an error an alert explains: raise the alert (once), end the job as failed."""
    seen = alerts.failure_observation(exc, time.time())
    if seen is None:
        raise exc
    log.warning("incremental sync of %s stopped: %s", connection.id, seen.cause.condition.value)
    alerts.apply(services.store, services.notifier, connection.team_id, connection.id, [seen])
    return "failed"

