""""Sync Person to Microsoft": a Marketo person, named by Marketo's "Call Webhook" flow step, gets
its Dynamics record.

- Linked (`dynamicsContactId` or `dynamicsLeadId` set and the record exists): the record is updated
  with the person's values of the fields that sync Marketo → Dynamics, converted as the write-back does
  (`reverse`: a choice label becomes its option value; values the person has; an empty one clears nothing).
- Not linked, or the linked lead was deleted in Dynamics (Marketo's rule: then a new one is made): a
  new lead is created from those fields, once Dynamics' required columns (from its metadata) all have
  a value. A person lacking one goes on the connection's error list with the reason, never dropped.

No duplicate, ever: the person is handled under a per-person Redis lock and read again inside it, so a
webhook fired twice at once finds the second delivery linked. The new lead's id is chosen here and
written to the person *before* the lead is created, so a crash in between leaves a person linked to a
lead that does not exist yet (the next delivery creates one), never a lead no person points to; and the
ongoing sync, finding the person by that id, updates it instead of creating a second person.
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any

from bot.dynamics.errors import (
    DataverseError,
    DataverseValidationError,
    RecordMissing,
    RequiredAttributeMissing,
)
from bot.dynamics.writes import check_required
from bot.models import Connection, Entity, EntityPlan, FlowState
from bot.store import FailedRecord, Resolution
from bot.sync.convert import ConversionError
from bot.sync.lease import Heartbeat
from bot.sync.ports import SyncServices
from bot.sync.reverse import person_values, written_back_fields

log = logging.getLogger(__name__)

PERSON_LOCK_SECONDS = 30.0
# Columns Dynamics requires that Marketo has no field for: a lead's Topic says where it came from.
LEAD_DEFAULTS = {"subject": "Marketo: Sync Person to Microsoft"}
LINK_REFUSED = "link"  # the error code of a person whose new Dynamics id Marketo would not store


def error_key(lead_id: int) -> str:
    """The error list's id of a person with no Dynamics record (error ids are Dynamics ids otherwise)."""
    return f"marketo-person-{lead_id}"


def sync_person(services: SyncServices, team_id: str, connection_id: str, lead_id: int) -> str:
    """Handle one delivery; returns what happened (created, updated, failed, gone, skipped, disabled, busy)."""
    store = services.store
    connection = store.get_connection(team_id, connection_id)
    if connection is None or connection.plan is None or connection.state != FlowState.synced \
            or connection.plan.for_entity(Entity.lead) is None:
        return "skipped"
    if not store.ongoing.enabled(team_id, connection_id):
        return "disabled"  # `/connect-dynamics disable` stops this direction too
    lease = store.webhooks.person_lease(team_id, connection_id, lead_id, PERSON_LOCK_SECONDS, owner="person")
    if not lease.take(wait=PERSON_LOCK_SECONDS):
        return "busy"  # the holder handles this person, reading it after this delivery arrived
    heartbeat = Heartbeat(lease, 1.0, lambda: False)
    heartbeat.start()
    try:
        return _handle(services, connection, lead_id)
    finally:
        heartbeat.close()
        lease.release()


def _plans(connection: Connection) -> list[EntityPlan]:
    """The person plans, contact first (a qualified person is a contact)."""
    assert connection.plan is not None
    return [p for e in (Entity.contact, Entity.lead) if (p := connection.plan.for_entity(e)) is not None]


def _handle(services: SyncServices, connection: Connection, lead_id: int) -> str:
    marketo = services.marketo()
    plans = _plans(connection)
    fields = ["id", "email", *(p.id_field for p in plans), *(f for p in plans for f in written_back_fields(p))]
    found = marketo.get_leads("id", [str(lead_id)], list(dict.fromkeys(fields)))
    if not found:
        return "gone"  # deleted in Marketo since the webhook fired
    person = found[0]
    with services.dataverse(connection.team_id, connection.id) as dataverse:
        try:
            for plan in plans:
                record_id = person.get(plan.id_field)
                if record_id and _updated(dataverse, plan, str(record_id), person):
                    _resolved(services, connection, lead_id)
                    return "updated"
            lead_plan = next(p for p in plans if p.entity == Entity.lead)
            return _create(services, connection, lead_plan, dataverse, person)
        except DataverseValidationError as exc:
            code = "required" if isinstance(exc, RequiredAttributeMissing) else exc.code or "value"
            _failed(services, connection, person, code, exc.user_message)
            return "failed"
        except ConversionError as exc:
            _failed(services, connection, person, "value", exc.user_message)
            return "failed"


def _updated(dataverse: Any, plan: EntityPlan, record_id: str, person: dict[str, Any]) -> bool:
    """Update the linked record; False when it no longer exists (or the id is no Dataverse id). With no
    value to write, the record is only looked up: an empty PATCH would still touch it."""
    try:
        uuid.UUID(record_id)
    except ValueError:
        return False
    values = _values(dataverse, plan, person)
    if not values:
        return bool(dataverse.read_by_ids(plan.entity, [record_id], []))
    try:
        dataverse.update(plan.entity, record_id, values)
    except RecordMissing:
        return False
    return True


def _values(dataverse: Any, plan: EntityPlan, person: dict[str, Any]) -> dict[str, Any]:
    """The person's values as Dataverse takes them; a choice label as its option value."""
    return person_values(plan, person, lambda: dataverse.choice_options(plan.entity))


def _create(services: SyncServices, connection: Connection, plan: EntityPlan, dataverse: Any,
            person: dict[str, Any]) -> str:
    values = {**LEAD_DEFAULTS, **_values(dataverse, plan, person)}
    check_required(Entity.lead, values, dataverse.required_attributes(Entity.lead))
    new_id = str(uuid.uuid4())
    previous = person.get(plan.id_field)
    if not _link(services, person, plan, new_id):
        _failed(services, connection, person, LINK_REFUSED,
                f"Marketo would not store the new Dynamics lead id in {plan.id_field}; no lead was created.")
        return "failed"
    try:
        dataverse.create(Entity.lead, {Entity.lead.primary_id: new_id, **values})
    except DataverseValidationError:
        _link(services, person, plan, previous)
        raise
    except DataverseError as exc:
        if exc.status != 412:  # 412: the row exists, made by an attempt whose answer was lost
            raise
    _resolved(services, connection, int(person["id"]))
    log.info("created Dynamics lead %s for Marketo person %s", new_id, person["id"])
    return "created"


def _link(services: SyncServices, person: dict[str, Any], plan: EntityPlan, record_id: str | None) -> bool:
    """Write the Dynamics id to the person, found by its Marketo id; True when Marketo stored it."""
    [result] = services.marketo().sync_leads([{"id": person["id"], plan.id_field: record_id}], "id",
                                             action="updateOnly")
    return result.status != "skipped"


def _failed(services: SyncServices, connection: Connection, person: dict[str, Any], code: str, reason: str) -> None:
    """On the connection's lead error list, kept until a later delivery succeeds (the cycles do not
    retry it: they read Dynamics, where this person has no record)."""
    errors, key = services.store.sync_errors, error_key(int(person["id"]))
    errors.book(connection.team_id, connection.id, Entity.lead.value,
                [FailedRecord(key, person.get("email"), str(code), reason)], time.time())
    errors.never_retry(connection.team_id, connection.id, Entity.lead.value, [key],
                       services.settings.SYNC_RETRY_ATTEMPTS)


def _resolved(services: SyncServices, connection: Connection, lead_id: int) -> None:
    services.store.sync_errors.resolve(connection.team_id, connection.id, Entity.lead.value, [error_key(lead_id)],
                                       Resolution.retried_ok)
