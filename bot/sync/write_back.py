"""The Marketo → Dynamics cycle (two-way sync for leads and contacts, as Marketo's own sync does).

One RQ job per connection (`write_back_job`), enqueued by the same schedule as the Dynamics → Marketo
cycles and by the Marketo webhook (`enqueue_write_back`, coalesced under a fixed job id), under its
own lease so two never overlap. It reads Marketo's Get Lead Changes from the saved paging token
(the first one is minted at the initial sync's start), for the Marketo fields that sync that way and
the Dynamics id fields, page by page:

1. each page's changes are collapsed per person and field, our own writes dropped (`collisions`);
2. the persons are read by id (one call per 300) to find their Dynamics lead or contact id; persons
   linked to none are left alone (the "Sync Person to Microsoft" webhook creates their lead);
3. the linked Dynamics records are read by id, each field settled (`collisions.decide`) and the new
   values converted back to Dataverse types (`reverse`) and written in batches (`update_many`:
   UpdateMultiple or `$batch`, `Retry-After` honoured by the client);
4. values refused by Dynamics go on the connection's error list (direction `to_dynamics`; each run first
   writes the listed records again with their person's current values, `SYNC_RETRY_ATTEMPTS` times), collisions
   on the conflicts list, and the page's `nextPageToken` is saved: a worker killed mid-cycle repeats
   only the page in flight, and what it had written already is then the same value (not written again).

Where the Dynamics → Marketo cycle wrote a whole record over a Marketo value that stands, the value
is put back on the person (`collisions.decide`). A record a person edited in Dynamics after that cycle
last caught up is handed over to it after our write (`hand_over`): it then sends the record although the
sync user modified it last, so the person's edit is not hidden behind ours.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from datetime import UTC, datetime
from typing import Any

from rq import Queue
from rq.job import JobStatus

from bot.dynamics.client import MODIFIED_ON
from bot.dynamics.errors import DataverseError, DataverseNotFound
from bot.marketo.activities import LeadChange
from bot.models import MODIFIED_BY, Connection, Direction, Entity, EntityPlan, FieldMapping, FlowState
from bot.store import Conflict, FailedRecord, Resolution, WriteBackRun
from bot.sync import collisions
from bot.sync.convert import ConversionError
from bot.sync.directions import TWO_WAY_ENTITIES, winner
from bot.sync.figures import parse_modified_on
from bot.sync.lease import connection_job
from bot.sync.ports import SyncServices
from bot.sync.reverse import (
    as_text,
    column_value,
    dynamics_as_marketo,
    marketo_value,
    person_values,
    same_value,
    writes_back,
)
from bot.sync.runs import JOB_TIMEOUT, RESULT_TTL
from bot.sync.watermarks import CLOCK_SKEW_SECONDS

log = logging.getLogger(__name__)

WRITE_BACK_JOB = "bot.sync.entry.write_back_job"
LEASE = "write-back"  # the lease's name beside the entities' (one write-back per connection)
AUDIT_COLUMNS = (MODIFIED_ON, MODIFIED_BY)
RETRY_LIMIT = 300  # refused records retried per entity and run (one Marketo read), the least tried first


def job_id(team_id: str, connection_id: str) -> str:
    return f"write-back-{team_id}-{connection_id}"


def enqueue_write_back(queue: Queue, team_id: str, connection_id: str) -> str | None:
    """Enqueue the connection's write-back unless one is already waiting (a fixed job id coalesces
    a burst of webhooks and schedule ticks into one run); returns the job id, or None when coalesced."""
    fixed = job_id(team_id, connection_id)
    waiting = queue.fetch_job(fixed)
    if waiting is not None and waiting.get_status(refresh=False) in (JobStatus.QUEUED, JobStatus.DEFERRED):
        return None
    job = queue.enqueue(WRITE_BACK_JOB, team_id, connection_id, job_id=fixed, job_timeout=JOB_TIMEOUT,
                        result_ttl=RESULT_TTL, failure_ttl=RESULT_TTL,
                        description=f"write-back Marketo → Dynamics for {connection_id}")
    return job.id


def write_back_plans(connection: Connection) -> dict[Entity, dict[str, FieldMapping]]:
    """Two-way entities of the plan → their written-back fields by Marketo name."""
    if connection.plan is None:
        return {}
    plans = {plan.entity: {m.marketo_name: m for m in plan.mappings if writes_back(m)}
             for plan in connection.plan.entities if plan.entity in TWO_WAY_ENTITIES}
    return {entity: fields for entity, fields in plans.items() if fields}


def run_write_back(services: SyncServices, team_id: str, connection_id: str) -> str:
    """Apply Marketo's changes since the saved paging token; returns how it ended."""
    store = services.store
    connection = store.get_connection(team_id, connection_id)
    if connection is None or connection.plan is None or connection.state != FlowState.synced:
        return "skipped"
    if not store.ongoing.enabled(team_id, connection_id):
        return "disabled"
    fields = write_back_plans(connection)
    if not fields:
        return "skipped"  # nothing syncs Marketo → Dynamics
    with connection_job(store, team_id, connection_id, LEASE, services.settings.SYNC_LEASE_SECONDS,
                        owner=f"write-back-{connection_id}") as heartbeat:
        if heartbeat is None:
            return "busy"
        counts: Counter[str] = Counter()
        status = "failed"
        try:
            marketo = services.marketo()
            token = store.write_back.token(team_id, connection_id) or _first_token(services, connection, marketo)
            source = services.dataverse(team_id, connection_id)
            try:
                cycle = _Cycle(services, connection, fields, marketo, source, counts)
                for entity in fields:
                    cycle.retry(entity)
                status = "done"
                for page in marketo.iter_lead_changes(token, cycle.marketo_fields):
                    cycle.apply(page.changes)
                    if heartbeat.stop.is_set():
                        status = "lost"  # another job owns the write-back now; its position stands
                        break
                    store.write_back.save_token(team_id, connection_id, page.next_token)
                    if page.more and not store.ongoing.enabled(team_id, connection_id):
                        status = "disabled"
                        break
            finally:
                if hasattr(source, "close"):
                    source.close()
            return status
        except BaseException:
            status = "failed"
            raise
        finally:
            store.write_back.record_run(team_id, connection_id, WriteBackRun(at=time.time(), status=status,
                                                                             counts=dict(counts)))


def _first_token(services: SyncServices, connection: Connection, marketo: Any) -> str:
    """The first cycle starts at the initial sync's start (a little earlier), else now; saved at once."""
    store = services.store
    run = store.get_run(connection.team_id, connection.run_id) if connection.run_id else None
    since = (run.started_at - CLOCK_SKEW_SECONDS) if run is not None else time.time()
    token = str(marketo.paging_token(datetime.fromtimestamp(since, UTC)))
    store.write_back.save_token(connection.team_id, connection.id, token)
    return token


class _Cycle:
    """One write-back run's work on each page of changes."""

    def __init__(self, services: SyncServices, connection: Connection, fields: dict[Entity, dict[str, FieldMapping]],
                 marketo: Any, source: Any, counts: Counter[str]) -> None:
        self.services, self.connection, self.fields = services, connection, fields
        self.marketo, self.source, self.counts = marketo, source, counts
        planned = connection.plan.entities if connection.plan else []
        self.plans: dict[Entity, EntityPlan] = {plan.entity: plan for plan in planned if plan.entity in fields}
        names = [name for by_name in fields.values() for name in by_name]
        # The Dynamics id fields of the planned entities only: Marketo refuses a field it lacks (1006), and
        # a plan without leads creates no `dynamicsLeadId`.
        self.marketo_fields = list(dict.fromkeys([*names, *(plan.id_field for plan in self.plans.values())]))
        self._options: dict[Entity, dict[str, dict[str, int]]] = {}

    def options(self, entity: Entity) -> dict[str, dict[str, int]]:
        """The entity's choice labels → values, read once per run and only when a choice column changed."""
        if entity not in self._options:
            self._options[entity] = self.source.choice_options(entity)
        return self._options[entity]

    def apply(self, changes: list[LeadChange]) -> None:
        edits = [c for c in changes if c.fields]
        ours = self.services.store.marketo_writes.ours({c.request_id for c in edits if c.request_id})
        self.counts["changes"] += sum(len(c.fields) for c in edits)
        self.counts["echoes"] += sum(len(c.fields) for c in edits if collisions.is_echo(c, ours))
        pending = collisions.collapse(edits, ours)
        if not pending:
            return
        read = ["id", "email", *self.marketo_fields]
        persons = {int(p["id"]): p for p in self.marketo.get_leads("id", [str(i) for i in pending], read)}
        for entity, by_name in self.fields.items():
            id_field = self.plans[entity].id_field
            linked = {lead: (persons[lead], {n: p for n, p in changes_of.items() if n in by_name})
                      for lead, changes_of in pending.items()
                      if lead in persons and persons[lead].get(id_field)}
            linked = {lead: pair for lead, pair in linked.items() if pair[1]}
            if linked:
                self._apply_entity(entity, by_name, list(linked.values()))

    def _apply_entity(self, entity: Entity, by_name: dict[str, FieldMapping],
                      linked: list[tuple[dict, dict[str, collisions.Pending]]]) -> None:
        plan, store, team_id = self.plans[entity], self.services.store, self.connection.team_id
        ids = [str(person[plan.id_field]).lower() for person, _ in linked]
        select = [*[m.read_name for m in by_name.values()], *AUDIT_COLUMNS]
        records = {str(r[entity.primary_id]).lower(): r for r in self.source.read_by_ids(entity, ids, select)}
        rows: list[dict[str, Any]] = []
        restores: list[dict[str, Any]] = []
        conflicts: list[Conflict] = []
        failures: list[FailedRecord] = []
        emails: dict[str, str | None] = {}
        for (person, changes), record_id in zip(linked, ids, strict=True):
            record = records.get(record_id)
            if record is None:
                self.counts["gone"] += len(changes)  # deleted in Dynamics: the D→M cycle marks the person
                continue
            emails[record_id] = person.get("email")
            try:
                row, restore, found = self._settle(entity, by_name, record, person, changes)
            except ConversionError as exc:
                failures.append(FailedRecord(record_id, person.get("email"), "conversion", exc.user_message,
                                             Direction.to_dynamics))
                continue
            conflicts.extend(found)
            if row:
                rows.append({entity.primary_id: record_id, **row})
            if restore:
                restores.append({plan.id_field: record_id, **restore})
        self._write(entity, records, rows, emails, failures)
        if restores:
            self.marketo.sync_leads(restores, plan.id_field, action="updateOnly")
            self.counts["marketo_restored"] += len(restores)
        store.write_back.add_conflicts(team_id, self.connection.id, conflicts)

    def _write(self, entity: Entity, records: dict[str, dict], rows: list[dict[str, Any]],
               emails: dict[str, str | None], failures: list[FailedRecord]) -> None:
        """PATCH the rows; the written records leave the error list, the refused ones (and `failures`) go on
        it, to be retried by the next runs (`retry`) up to SYNC_RETRY_ATTEMPTS times."""
        store, team_id = self.services.store, self.connection.team_id
        refused = self.source.update_many(entity, rows) if rows else {}
        gone = [record_id for record_id, error in refused.items() if isinstance(error, DataverseNotFound)]
        self.counts["gone"] += len(gone)
        failures = [*failures, *(_refused(record_id, emails.get(record_id), error)
                                 for record_id, error in refused.items() if record_id not in gone)]
        written = [str(row[entity.primary_id]) for row in rows if str(row[entity.primary_id]) not in refused]
        self.counts["records_written"] += len(written)
        if self.connection.sync_user_id:
            store.write_back.hand_over(team_id, self.connection.id, entity.value,
                                       self._unsent_edits(entity, [records[i] for i in written]))
        self.counts["failed"] += len(failures)
        store.sync_errors.resolve(team_id, self.connection.id, entity.value, written, Resolution.retried_ok,
                                  Direction.to_dynamics)
        store.sync_errors.resolve(team_id, self.connection.id, entity.value, gone, Resolution.deleted,
                                  Direction.to_dynamics)
        if failures:
            store.sync_errors.book(team_id, self.connection.id, entity.value, failures, time.time())

    def _unsent_edits(self, entity: Entity, written: list[dict]) -> list[str]:
        """The written records a person edited in Dynamics after the entity's Dynamics → Marketo cycles
        caught up (or before any did): our write hides that edit from their rule, so they are handed over.
        A record last edited by a person long ago was sent then; handing it over would only echo it."""
        caught_up = self.services.store.ongoing.caught_up_at(self.connection.team_id, self.connection.id,
                                                            entity.value)
        since = None if caught_up is None else caught_up - CLOCK_SKEW_SECONDS

        def unsent(record: dict) -> bool:
            edited_at = parse_modified_on(record.get(MODIFIED_ON))
            return since is None or edited_at is None or edited_at >= since

        return [str(record[entity.primary_id]) for record in written
                if record.get(MODIFIED_BY) != self.connection.sync_user_id and unsent(record)]

    def retry(self, entity: Entity) -> None:
        """Write the refused records of the error list again (the least tried first, below the attempt
        bound) with their person's current values where Dynamics holds others."""
        plan, store, team_id = self.plans[entity], self.services.store, self.connection.team_id
        listed = store.sync_errors.retry_candidates(team_id, self.connection.id, entity.value,
                                                    self.services.settings.SYNC_RETRY_ATTEMPTS, RETRY_LIMIT,
                                                    Direction.to_dynamics)
        if not listed:
            return
        by_name = self.fields[entity]
        read = ["id", "email", plan.id_field, *by_name]
        persons = {str(p[plan.id_field]).lower(): p
                   for p in self.marketo.get_leads(plan.id_field, [e.id for e in listed], read) if p.get(plan.id_field)}
        select = [*[m.read_name for m in by_name.values()], *AUDIT_COLUMNS]
        records = {str(r[entity.primary_id]).lower(): r
                   for r in self.source.read_by_ids(entity, list(persons), select)} if persons else {}
        store.sync_errors.resolve(team_id, self.connection.id, entity.value,
                                  [e.id for e in listed if e.id.lower() not in records], Resolution.deleted,
                                  Direction.to_dynamics)
        rows: list[dict[str, Any]] = []
        failures: list[FailedRecord] = []
        emails = {record_id: persons[record_id].get("email") for record_id in records}
        for record_id, record in records.items():
            person = persons[record_id]
            try:
                values = person_values(plan, person, lambda: self.options(entity))
            except ConversionError as exc:
                failures.append(FailedRecord(record_id, emails[record_id], "conversion", exc.user_message,
                                             Direction.to_dynamics))
                continue
            row = {m.source: values[m.source] for name, m in by_name.items() if m.source in values
                   and not same_value(marketo_value(m, as_text(person.get(name))), dynamics_as_marketo(m, record))}
            rows.append({entity.primary_id: record_id, **row})
        self._write(entity, records, [row for row in rows if len(row) > 1], emails, failures)
        held = [str(row[entity.primary_id]) for row in rows if len(row) == 1]  # Dynamics holds them already
        store.sync_errors.resolve(team_id, self.connection.id, entity.value, held, Resolution.retried_ok,
                                  Direction.to_dynamics)

    def _settle(self, entity: Entity, by_name: dict[str, FieldMapping], record: dict, person: dict,
                changes: dict[str, collisions.Pending]) -> tuple[dict[str, Any], dict[str, Any], list[Conflict]]:
        """One record's changed fields: (Dataverse values to write, Marketo values to put back, collisions)."""
        row: dict[str, Any] = {}
        restore: dict[str, Any] = {}
        found: list[Conflict] = []
        by_us = bool(self.connection.sync_user_id) and record.get(MODIFIED_BY) == self.connection.sync_user_id
        for name, pending in changes.items():
            mapping = by_name[name]
            new = marketo_value(mapping, pending.new)
            dynamics = dynamics_as_marketo(mapping, record)
            side = winner(entity, mapping)
            decision = collisions.decide(new, marketo_value(mapping, pending.old), pending.has_old, dynamics,
                                         marketo_value(mapping, as_text(person.get(name))), side, by_us)
            self.counts[decision.outcome.value] += 1
            if decision.write_dynamics:
                row[mapping.source] = column_value(mapping, pending.new, lambda: self.options(entity))
            if decision.restore:
                restore[name] = decision.restore_marketo
            if decision.collision:
                found.append(Conflict(entity=entity.value, record_id=str(record[entity.primary_id]), field=name,
                                      marketo_value=pending.new, dynamics_value=as_text(dynamics), winner=side,
                                      at=time.time()))
        return row, restore, found


def _refused(record_id: str, email: str | None, error: DataverseError) -> FailedRecord:
    reason = error.message or error.user_message
    return FailedRecord(record_id, email, error.code or str(error.status), reason, Direction.to_dynamics)
