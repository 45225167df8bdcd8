"""Opportunities, one way (Dynamics → Marketo), with their contact roles (sync-more §B2, §D6, §G).

An opportunity batch is upserted like any entity's (deduped on `externalOpportunityId` = opportunityid,
linked by `externalCompanyId` = parent account and `externalSalesPersonId` = owner); then the contact
roles of the opportunities written: Dataverse `connections` from the opportunity (`record1id`) to a
contact (`record2id`) in a role (`record2roleid`, its name the lookup's formatted value) become Marketo
opportunity roles (`externalOpportunityId`, `leadId` of the contact's person found by
`dynamicsContactId`, `role`, `isPrimary` when the contact is the opportunity's `parentcontactid`). The plan
reads `parentcontactid` with the opportunities and their prepared records carry it to the writer, which takes
it out before Marketo sees them; only a record without it (a plan made before it was read, or a change-tracking
link made without it) has it read again from Dynamics.
A contact with no Marketo person (not synced, e.g. filtered out) has no role there. A role Marketo
refuses (to write, or to delete as stale) puts its opportunity on the failure list, so the next cycle
writes it (and its roles) again.
An opportunity Marketo had already ("updated") may hold roles Dynamics no longer has (a connection deleted,
or moved to another contact or role): those are deleted in Marketo. A role changed alone reaches Marketo
through `bot.sync.role_changes`, which makes its opportunity written again.

The initial sync runs opportunities after accounts and contacts (`PREREQUISITES`): the roles need the
contacts' persons and the opportunities their companies.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Protocol

from bot.marketo.models import Reason, RecordResult
from bot.models import SYNC_FILTER_ATTRIBUTE, Entity, EntityMetadata, EntityPlan

log = logging.getLogger(__name__)

CONNECTIONS = "connections"
FROM, TO, ROLE = "_record1id_value", "_record2id_value", "_record2roleid_value"
PRIMARY_CONTACT_ATTRIBUTE = "parentcontactid"
PRIMARY_CONTACT = "_parentcontactid_value"  # its read name, and the key it rides under in a prepared record
CONTACT_ID_FIELD = Entity.contact.marketo_id_field
FORMATTED = "@OData.Community.Display.V1.FormattedValue"
LOOKUP_TABLE = "@Microsoft.Dynamics.CRM.lookuplogicalname"
WRITTEN = frozenset({"created", "updated"})
ROLE_FAILED = "Its contact roles could not all be written to (or removed from) Marketo: {reason}"
ONE_WAY_NOTE = ("Opportunities sync one way, to Marketo's standard opportunity fields only (Marketo's API "
                "cannot create opportunity fields), with their contact roles.")

OPPORTUNITY_TYPE_CODE = 3  # a connection's `record1objecttypecode` when it starts at an opportunity
ROLES_FILTER = f"record1objecttypecode eq {OPPORTUNITY_TYPE_CODE}"
COUNT_CHUNK = 50  # opportunity ids per counting `$filter` (an `or` of `eq`s)
# Needs Dynamics 365 Sales: an org without the table (or a sync user who cannot read it) is not offered it.
OPTIONAL_ENTITIES = frozenset({Entity.opportunity})
# Entities the initial sync finishes (or stops) before starting this one.
PREREQUISITES: dict[Entity, tuple[Entity, ...]] = {Entity.opportunity: (Entity.account, Entity.contact)}


class RoleSource(Protocol):
    def read_by_ids(self, entity: Entity | str, ids: list[str], select: list[str]) -> list[dict[str, Any]]: ...

    def read_where_in(self, entity_set: str, column: str, values: list[str],
                      select: list[str]) -> list[dict[str, Any]]: ...


class _Rows(Protocol):
    records: list[dict[str, Any]]


class RoleCounter(Protocol):
    def count_rows(self, entity_set: str, primary_id: str, filter_expression: str | None = None) -> int: ...

    def iter_rows(self, entity_set: str, select: list[str], *, track_changes: bool = False,
                  filter_expression: str | None = None, start_link: str | None = None) -> Iterator[_Rows]: ...


def count_roles(client: RoleCounter, filtered: bool) -> int:
    """The contact roles Dynamics holds (connections from an opportunity), for the plan. With `filtered` (the
    opportunities' `new_synctomkto` applies) only those of opportunities that pass it: all roles less those of
    the opportunities an explicit No leaves out."""
    roles = client.count_rows(CONNECTIONS, "connectionid", ROLES_FILTER)
    if not filtered or not roles:
        return roles
    primary_id = Entity.opportunity.primary_id
    excluded = [str(uuid.UUID(str(row[primary_id])))
                for page in client.iter_rows(Entity.opportunity.entity_set, [primary_id],
                                             filter_expression=f"{SYNC_FILTER_ATTRIBUTE} eq false")
                for row in page.records]
    for start in range(0, len(excluded), COUNT_CHUNK):
        ids = " or ".join(f"{FROM} eq {i}" for i in excluded[start:start + COUNT_CHUNK])
        roles -= client.count_rows(CONNECTIONS, "connectionid", f"{ROLES_FILTER} and ({ids})")
    return roles


def primary_contact_lookup(metadata: EntityMetadata) -> str | None:
    """The read name of an opportunity's primary contact, when the table has the lookup (else None)."""
    attr = metadata.attribute(PRIMARY_CONTACT_ATTRIBUTE) if metadata.entity == Entity.opportunity else None
    return attr.read_name if attr is not None and attr.attribute_type == "LookupType" else None


def carried_primary_contact(record: dict, plan: EntityPlan) -> dict[str, Any]:
    """What a prepared opportunity carries to its writer: its primary contact as read (None: it has none);
    nothing when the row does not hold the column (the plan does not read it)."""
    lookup = plan.primary_contact_lookup
    return {PRIMARY_CONTACT: record[lookup]} if lookup and lookup in record else {}


def as_sent(records: list[dict]) -> list[dict]:
    """Prepared records as Marketo receives them: without what they carry for the writer."""
    return [{name: value for name, value in record.items() if name != PRIMARY_CONTACT} for record in records]


def writer(marketo: Any, source: RoleSource, action: str) -> Callable[[list[dict]], list[Any]]:
    """The batch writer for opportunities: upsert them, then (unless only updating added columns) their roles."""

    def write(records: list[dict]) -> list[Any]:
        results: list[RecordResult] = list(marketo.sync_opportunities(as_sent(records), action=action))
        if action != "createOrUpdate":
            return results
        key = Entity.opportunity.marketo_id_field
        written = [str(rec[key]) for rec, result in zip(records, results, strict=True) if result.status in WRITTEN]
        existed = [str(rec[key]) for rec, result in zip(records, results, strict=True) if result.status == "updated"]
        primaries = {str(rec[key]): rec[PRIMARY_CONTACT] for rec in records if PRIMARY_CONTACT in rec}
        refused = sync_roles(marketo, source, written, existed, primaries)
        return [_refused(refused[str(rec[key])]) if str(rec[key]) in refused else result
                for rec, result in zip(records, results, strict=True)]

    return write


def _refused(reason: Reason) -> RecordResult:
    return RecordResult(status="skipped", reasons=[Reason(code=reason.code, message=ROLE_FAILED.format(
        reason=reason.message or reason.code))])


def role_records(connections: list[dict], primaries: Mapping[str, str | None],
                 persons: dict[str, int]) -> list[dict]:
    """Marketo opportunity roles for Dataverse connections (opportunity → contact, in a named role).

    A connection to anything but a contact with a Marketo person, or without a role name, has no role."""
    roles: dict[tuple[str, int, str], dict] = {}
    for row in connections:
        opportunity, contact = str(row.get(FROM) or ""), str(row.get(TO) or "")
        role = str(row.get(ROLE + FORMATTED) or "").strip()
        if row.get(TO + LOOKUP_TABLE, "contact") != "contact" or not role or contact not in persons:
            continue
        lead_id = persons[contact]
        roles[(opportunity, lead_id, role)] = {"externalOpportunityId": opportunity, "leadId": lead_id, "role": role,
                                               "isPrimary": primaries.get(opportunity) == contact}
    return list(roles.values())


def _primaries(source: RoleSource, opportunity_ids: list[str],
               known: Mapping[str, str | None]) -> Mapping[str, str | None]:
    """The primary contact of each of `opportunity_ids`: `known`, else read from Dynamics."""
    missing = [i for i in opportunity_ids if i not in known]
    if not missing:
        return known
    read = {str(r[Entity.opportunity.primary_id]): r.get(PRIMARY_CONTACT)
            for r in source.read_by_ids(Entity.opportunity, missing, [PRIMARY_CONTACT])}
    return {**known, **read}


def _key(role: dict) -> tuple[str, int, str]:
    return str(role["externalOpportunityId"]), int(role["leadId"]), str(role["role"])


def sync_roles(marketo: Any, source: RoleSource, opportunity_ids: list[str], existed: list[str] | None = None,
               primaries: Mapping[str, str | None] | None = None) -> dict[str, Reason]:
    """Upsert the contact roles of `opportunity_ids`, and delete in Marketo the roles of those that `existed`
    there before which Dynamics no longer has; returns why, per opportunity, a role was refused (written or
    deleted). `primaries`: the primary contacts read with the opportunities; those of the others are read
    from Dynamics."""
    if not opportunity_ids:
        return {}
    connections = source.read_where_in(CONNECTIONS, FROM, opportunity_ids, ["connectionid", FROM, TO, ROLE])
    roles: list[dict] = []
    if connections:
        contacts = sorted({str(r[TO]) for r in connections if r.get(TO)})
        persons = {str(p[CONTACT_ID_FIELD]): int(p["id"])
                   for p in marketo.get_leads(CONTACT_ID_FIELD, contacts, ["id", CONTACT_ID_FIELD])
                   if p.get(CONTACT_ID_FIELD)}
        roles = role_records(connections, _primaries(source, opportunity_ids, primaries or {}), persons)
    refused = _delete_stale(marketo, existed, {_key(role) for role in roles}) if existed else {}
    if not roles:
        return refused
    for role, result in zip(roles, marketo.sync_opportunity_roles(roles), strict=True):
        if result.status not in WRITTEN:
            refused.setdefault(role["externalOpportunityId"], _reason(result))
    log.info("opportunity roles: %d written, %d opportunities with a refused role", len(roles) - len(refused),
             len(refused))
    return refused


def _reason(result: RecordResult) -> Reason:
    return result.reasons[0] if result.reasons else Reason(code="skipped", message="skipped")


def _delete_stale(marketo: Any, opportunity_ids: list[str], kept: set[tuple[str, int, str]]) -> dict[str, Reason]:
    """Delete the Marketo roles of `opportunity_ids` that are not `kept` (Dynamics no longer has them); returns
    why, per opportunity, one could not be deleted: its opportunity then goes on the failure list, so a later
    cycle writes it, and deletes its stale roles, again."""
    stale = [role for role in marketo.opportunity_roles(opportunity_ids) if _key(role) not in kept]
    if not stale:
        return {}
    refused: dict[str, Reason] = {}
    results = marketo.delete_opportunity_roles(stale)
    for role, result in zip(stale, results, strict=True):
        reason = _reason(result)
        if result.status != "deleted" and reason.code != "1013":  # already gone (1013) is what was wanted
            refused.setdefault(str(role["externalOpportunityId"]), reason)
    if refused:
        log.warning("stale opportunity roles of %d opportunities could not be deleted in Marketo: %s", len(refused),
                    "; ".join(f"{r.code} {r.message}" for r in list(refused.values())[:3]))
    log.info("opportunity roles: %d deleted (no longer in Dynamics)", sum(r.status == "deleted" for r in results))
    return refused
