"""Sync of the plan's custom tables to Marketo custom objects, one way (issue #14 point 6).

Runs after the people: in the initial sync as soon as the people its tables link to are written (beside
the run's other entities), and in each incremental cycle of the connection from the tables' delta links, or
for a table without change tracking from its `modifiedon` watermark (which does not see deletes).
Each record is linked to its person through the plan's lookups; a record with no person in Dynamics, or
whose person is not in Marketo, is reported on the connection's error list (entity = the table), never
silently dropped, and retried by the later cycles like people's failures (`bot.sync.retries`) until it is
written or reaches `SYNC_RETRY_ATTEMPTS`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from rq import Queue
from rq.job import Dependency

from bot.custom_object_models import CustomObjectPlan
from bot.dynamics.client import delta_link_columns
from bot.dynamics.errors import ChangeTokenExpired
from bot.models import Connection, Entity, FlowState, SyncRun
from bot.store import FailedRecord, Resolution, Store, Watermark
from bot.sync.custom_objects import record_values
from bot.sync.lease import connection_job
from bot.sync.ports import SyncServices
from bot.sync.retries import Retried, Rewrite, retry_listed
from bot.sync.watermarks import first_watermark, fresh_pages

log = logging.getLogger(__name__)

LEASE = "custom-objects"  # the lease's name beside the entities' (one custom-tables job per connection)

BATCH_SIZE = 300
CUSTOM_OBJECTS_JOB = "bot.sync.entry.custom_objects_job"
JOB_TIMEOUT = 3600
RESULT_TTL = 3600
NO_PERSON = "no-person"


class _Page(Protocol):
    records: list[dict[str, Any]]
    delta_link: str | None


class TableSource(Protocol):
    def iter_table_pages(self, plan: CustomObjectPlan, delta_link: str | None = None) -> Iterator[_Page]: ...

    def lookup_values(self, entity_set: str, primary_id: str, ids: list[str], read_name: str) -> dict[str, str]: ...

    def read_where_in(self, entity_set: str, column: str, values: list[str],
                      select: list[str]) -> list[dict[str, Any]]: ...

    def iter_rows_modified_since(self, entity_set: str, primary_id: str, select: list[str],
                                 since: str) -> Iterator[_Page]: ...


class ObjectTarget(Protocol):
    def sync_custom_objects(self, api_name: str, records: list[dict[str, Any]]) -> list[Any]: ...


@dataclass
class TableOutcome:
    read: int = 0
    sent: list[str] = field(default_factory=list)  # ids sent to Marketo (those not in `failures` were written)
    failures: list[FailedRecord] = field(default_factory=list)
    delta_link: str | None = None

    @property
    def written(self) -> list[str]:
        failed = {f.id for f in self.failures}
        return [record_id for record_id in self.sent if record_id not in failed]


def _people(plan: CustomObjectPlan, source: TableSource, records: list[dict[str, Any]]) -> dict[str, str]:
    """Record id -> the Dataverse id of its person, following the plan's one or two lookups."""
    first = plan.link.hops[0].read_name
    if len(plan.link.hops) == 1:
        return {str(r[plan.primary_id]): str(r[first]) for r in records if r.get(first)}
    middle_ids = sorted({str(r[first]) for r in records if r.get(first)})
    if not middle_ids or plan.link.via_entity_set is None or plan.link.via_primary_id is None:
        return {}
    persons = source.lookup_values(plan.link.via_entity_set, plan.link.via_primary_id, middle_ids,
                                   plan.link.hops[1].read_name)
    return {str(r[plan.primary_id]): persons[str(r[first])] for r in records if str(r.get(first)) in persons}


def _batches(items: list[dict[str, Any]], size: int) -> Iterable[list[dict[str, Any]]]:
    return (items[start:start + size] for start in range(0, len(items), size))


def sync_table(plan: CustomObjectPlan, source: TableSource, target: ObjectTarget, delta_link: str | None = None,
               batch_size: int = BATCH_SIZE) -> TableOutcome:
    """Upsert the table's records (all, or those changed since `delta_link`) in batches of ≤ `batch_size`."""
    outcome = TableOutcome()
    for page in source.iter_table_pages(plan, delta_link):
        write_records(plan, source, target, page.records, outcome, batch_size)
        outcome.delta_link = page.delta_link or outcome.delta_link
    return outcome


def sync_table_since(plan: CustomObjectPlan, source: TableSource, target: ObjectTarget, start: Watermark,
                     batch_size: int = BATCH_SIZE) -> tuple[TableOutcome, Watermark]:
    """Upsert the records of a table without change tracking modified since `start`; returns the new watermark."""
    outcome, mark = TableOutcome(), start
    pages = source.iter_rows_modified_since(plan.entity_set, plan.primary_id, plan.select, start.modified_on)
    for fresh, page_mark in fresh_pages(pages, start, plan.primary_id):
        write_records(plan, source, target, fresh, outcome, batch_size)
        mark = page_mark
    return outcome, mark


def write_records(plan: CustomObjectPlan, source: TableSource, target: ObjectTarget, records: list[dict[str, Any]],
                  outcome: TableOutcome, batch_size: int = BATCH_SIZE) -> None:
    """Upsert `records` with their person links; what was written and what failed go to `outcome`."""
    outcome.read += len(records)
    people = _people(plan, source, records)
    ready: list[dict[str, Any]] = []
    for record in records:
        record_id = str(record[plan.primary_id])
        person = people.get(record_id)
        if person is None:
            outcome.failures.append(FailedRecord(record_id, None, NO_PERSON,
                                                 f"not linked to a {plan.link.person} in Dynamics"))
        else:
            ready.append(record_values(plan, record, person))
    for batch in _batches(ready, batch_size):
        for values, result in zip(batch, target.sync_custom_objects(plan.api_name, batch), strict=True):
            record_id = str(values[plan.dedupe_field])
            outcome.sent.append(record_id)
            if result.status == "skipped":
                reason = result.reasons[0] if result.reasons else None
                outcome.failures.append(FailedRecord(
                    record_id, None, str(getattr(reason, "code", "skipped")),
                    str(getattr(reason, "message", "Marketo skipped the record"))))


def _retry(services: SyncServices, team_id: str, connection_id: str, plan: CustomObjectPlan, source: TableSource,
           target: ObjectTarget) -> Retried:
    """The table's listed failures, re-read by id and written again like people's (`bot.sync.retries`)."""

    def rewrite(ids: list[str]) -> Rewrite:
        outcome = TableOutcome()
        records = source.read_where_in(plan.entity_set, plan.primary_id, ids, plan.select)
        write_records(plan, source, target, records, outcome)
        return Rewrite(found=[str(r[plan.primary_id]) for r in records], sent=outcome.sent, failures=outcome.failures)

    return retry_listed(services.store, team_id, connection_id, plan.table, services.settings.SYNC_RETRY_ATTEMPTS,
                        BATCH_SIZE, rewrite)


def custom_objects_job_id(connection_id: str) -> str:
    """The id of the connection's custom-tables job: one at a time per connection."""
    return f"custom-objects-{connection_id}"


def enqueue_custom_objects(queue: Queue, team_id: str, connection_id: str, after: list[str] | None = None) -> str:
    """One job for the connection's custom tables, run once the jobs `after` (the people's cycle) ended,
    however they ended: their people are then in Marketo for the links."""
    job = queue.enqueue(CUSTOM_OBJECTS_JOB, team_id, connection_id, job_id=custom_objects_job_id(connection_id),
                        job_timeout=JOB_TIMEOUT, result_ttl=RESULT_TTL, failure_ttl=RESULT_TTL,
                        description=f"custom tables for {connection_id}",
                        depends_on=Dependency(jobs=after, allow_failure=True) if after else None)
    return str(job.id)


def linked_people_written(plans: list[CustomObjectPlan], run: SyncRun, entity: Entity, run_finished: bool) -> bool:
    """Whether `entity` just done in `run` makes the custom tables' job due: it is the last of the people the
    tables link to (their persons are in Marketo for the links, so the job runs beside the run's other
    entities rather than after all of them), or, in a run that writes none of those people, the run finished."""
    linked = {plan.link.person for plan in plans}
    people = [p for p in run.entities if p.entity.value in linked]
    if not people:
        return run_finished
    return entity.value in linked and all(p.done for p in people)


def custom_objects_due(store: Store, run: SyncRun, entity: Entity, run_finished: bool) -> bool:
    """`linked_people_written` for the run's connection, when its plan has custom tables."""
    connection = store.get_connection(run.team_id, run.connection_id)
    if connection is None or connection.plan is None or not connection.plan.custom_objects:
        return False
    return linked_people_written(connection.plan.custom_objects, run, entity, run_finished)


def run_custom_objects(services: SyncServices, team_id: str, connection_id: str) -> str:
    """The connection's custom tables, after its people; from each table's delta link when it has one."""
    store = services.store
    connection = store.get_connection(team_id, connection_id)
    if connection is None or connection.plan is None or not connection.plan.custom_objects:
        return "skipped"
    if connection.state not in {FlowState.syncing, FlowState.synced}:
        return "skipped"
    # Several paths enqueue this job (the run, each cycle, an approved change): one runs at a time.
    with connection_job(store, team_id, connection_id, LEASE, services.settings.SYNC_LEASE_SECONDS,
                        owner=f"custom-objects-{connection_id}") as held:
        if held is None:
            return "busy"
        _sync_tables(services, connection, connection.plan.custom_objects)
    return "done"


def _sync_tables(services: SyncServices, connection: Connection, plans: list[CustomObjectPlan]) -> None:
    """Each custom table: its listed failures retried, then its changes (or all of it) written and, only then,
    its new position (delta link or watermark) kept."""
    store, team_id = services.store, connection.team_id
    source = services.dataverse(team_id, connection.id)
    marketo = services.marketo()
    try:
        for plan in plans:
            key = plan.table  # its delta link, watermark and error list, beside the people's
            retried = _retry(services, team_id, connection.id, plan, source, marketo)
            read = _tracked if plan.change_tracking else _modified_since
            outcome, keep = read(store, connection, plan, source, marketo)
            store.sync_errors.resolve(team_id, connection.id, key, outcome.written, Resolution.retried_ok)
            store.sync_errors.book(team_id, connection.id, key, outcome.failures, time.time())
            keep()
            log.info("custom table %s: %d read, %d written, %d failed; %d of %d listed failures written on retry",
                     plan.table, outcome.read, len(outcome.written), len(outcome.failures), retried.ok, retried.tried)
    finally:
        if hasattr(source, "close"):
            source.close()


def _tracked(store: Store, connection: Connection, plan: CustomObjectPlan, source: TableSource,
             target: ObjectTarget) -> tuple[TableOutcome, Callable[[], None]]:
    """The changes since the table's delta link (all of it without one); and how to keep the new link."""
    team_id, key = connection.team_id, plan.table
    link = store.delta_links.get(team_id, connection.id, key)
    if link and not set(plan.select) <= delta_link_columns(link):
        link = None  # made for fewer columns (by a job of the plan before a change): its records lack them
    try:
        outcome = sync_table(plan, source, target, link)
    except ChangeTokenExpired:  # kept, the link would fail every later cycle too
        log.warning("change token of %s expired for %s; reading it in full", plan.table, connection.id)
        outcome = sync_table(plan, source, target, None)
    new_link = outcome.delta_link
    return outcome, lambda: store.delta_links.put(team_id, connection.id, key, new_link) if new_link else None


def _modified_since(store: Store, connection: Connection, plan: CustomObjectPlan, source: TableSource,
                    target: ObjectTarget) -> tuple[TableOutcome, Callable[[], None]]:
    """A table without change tracking: what was modified since its watermark; read in full without one (the
    initial sync, a table added or given columns since), after which it follows the people's first watermark,
    the initial sync's start."""
    marks, team_id, key = store.watermarks, connection.team_id, plan.table
    start = marks.get(team_id, connection.id, key)
    if start is None:
        outcome, mark = sync_table(plan, source, target), first_watermark(store, connection)
    else:
        outcome, mark = sync_table_since(plan, source, target, start)
    return outcome, lambda: marks.put(team_id, connection.id, key, mark) if mark else None
