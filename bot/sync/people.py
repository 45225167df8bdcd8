"""One Marketo person per human: what the rules of `bot.sync.identity` do in Marketo and Redis.

`People.settle` runs just before a batch of leads or contacts is written, in the initial sync and in every
incremental cycle, so the outcome does not depend on which entity is read first:

- contacts qualified from a synced lead: the link is kept in Redis, duplicate persons are merged (the
  contact's wins, audited), the lead's person takes the contact's id, and the contact is written with the
  lead's id too, so a lead written later finds the same person;
- leads qualified into a synced contact: written without the fields the contact syncs (Dynamics wins for
  contacts, so its values stay);
- records merged away in Dynamics: their persons are merged into the master's (audited) and not written.

Records and their people's accounts are noted for account deletes (`flag_account_deletes`). A lead written at
the very moment its contact is first linked, by another worker, may write the shared fields once more; the
contact's next change puts its values back.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from bot.audit import PEOPLE_MERGED, SYSTEM, AuditLog
from bot.marketo.errors import MarketoError
from bot.models import Connection, Entity, EntityPlan, FieldPlan
from bot.store import Store
from bot.sync.identity import (
    ACCOUNT_DELETED_FIELD,
    Identities,
    Person,
    Resolution,
    person_key,
    resolve_merged,
    resolve_qualified,
    split_person_key,
)
from bot.sync.links import contact_owned
from bot.sync.mapping import PERSON_ENTITIES

log = logging.getLogger(__name__)

GONE = "1004"  # a person merged or deleted meanwhile (another worker did it): nothing left to do


class People:
    def __init__(self, marketo: Any, store: Store, connection: Connection) -> None:
        self.marketo, self.store = marketo, store
        self.team_id, self.connection_id = connection.team_id, connection.id
        self.plans = connection.plan or FieldPlan(entities=[])
        self.lead_plan = self.plans.for_entity(Entity.lead)
        self.contact_plan = self.plans.for_entity(Entity.contact)
        self.audit = AuditLog(store)

    def settle(self, plan: EntityPlan, records: list[dict], keys: list[tuple[str, str | None]],
               identities: Identities) -> None:
        """Make Marketo ready for this batch of `plan.entity` records (`records` may be changed in place)."""
        if plan.entity not in PERSON_ENTITIES:
            return
        if identities.merged_into:
            self._follow_merges(plan, identities.merged_into)
        if plan.entity == Entity.contact and identities.qualified_from and self.lead_plan:
            self._join_qualified(records, keys, identities.qualified_from)
        if plan.entity == Entity.lead and self.contact_plan:
            self._contact_fields_win(records, keys)
        if identities.account_of and self.plans.for_entity(Entity.account):
            self.store.people.place(self.team_id, self.connection_id,
                                    {person_key(plan.entity, r): a for r, a in identities.account_of.items()})

    # -- qualified leads -------------------------------------------------------------------------------
    def _join_qualified(self, records: list[dict], keys: list[tuple[str, str | None]],
                        pairs: dict[str, str]) -> None:
        """`pairs`: contact id → the lead it was qualified from, for contacts of this batch."""
        assert self.lead_plan is not None and self.contact_plan is not None
        lead_field, contact_field = self.lead_plan.id_field, self.contact_plan.id_field
        self.store.people.link_qualified(self.team_id, self.connection_id, {lead: c for c, lead in pairs.items()})
        persons = self._persons([(contact_field, list(pairs)), (lead_field, list(pairs.values()))])
        rekeys = []
        for contact, lead in pairs.items():
            resolution = resolve_qualified(contact, lead, persons)
            self._merge(resolution, f"contact {contact} was qualified from lead {lead}")
            if resolution.rekey:
                rekeys.append({"id": resolution.winner, contact_field: contact})
        self._rekey(rekeys)
        for record, (record_id, _) in zip(records, keys, strict=True):
            if record_id in pairs:
                record[lead_field] = pairs[record_id]

    def _contact_fields_win(self, records: list[dict], keys: list[tuple[str, str | None]]) -> None:
        assert self.lead_plan is not None and self.contact_plan is not None
        linked = self.store.people.qualified(self.team_id, self.connection_id, [record_id for record_id, _ in keys])
        if not linked:
            return
        owned = contact_owned(self.contact_plan) - {self.lead_plan.id_field}
        for record, (record_id, _) in zip(records, keys, strict=True):
            if record_id in linked:
                for name in owned.intersection(record):
                    del record[name]

    # -- merges in Dynamics ------------------------------------------------------------------------------
    def _follow_merges(self, plan: EntityPlan, merged_into: dict[str, str]) -> None:
        persons = self._persons([(plan.id_field, [*merged_into, *merged_into.values()])])
        rekeys = []
        for loser, master in merged_into.items():
            resolution = resolve_merged(plan.entity, loser, master, persons)
            self._merge(resolution, f"{plan.entity.value} {loser} was merged into {master} in Dynamics")
            if resolution.rekey:
                rekeys.append({"id": resolution.winner, plan.id_field: master})
        self._rekey(rekeys)

    # -- account deletes -------------------------------------------------------------------------------
    def flag_account_deletes(self, account_ids: list[str]) -> int:
        """Set `dynamicsAccountDeleted` on the people of deleted accounts; returns how many were flagged."""
        by_entity: dict[Entity, list[str]] = {}
        for account in account_ids:
            for key in self.store.people.people_at(self.team_id, self.connection_id, account.lower()):
                entity, record_id = split_person_key(key)
                by_entity.setdefault(entity, []).append(record_id)
        flagged = 0
        if by_entity and ACCOUNT_DELETED_FIELD.name not in self._planned_fields():
            self.marketo.create_lead_fields([ACCOUNT_DELETED_FIELD])  # a plan approved before the field existed
        for entity, ids in by_entity.items():
            plan = self.plans.for_entity(entity)
            if plan is None:
                continue
            rows = [{plan.id_field: record_id, ACCOUNT_DELETED_FIELD.name: True} for record_id in ids]
            flagged += sum(r.status == "updated" for r in self.marketo.sync_leads(rows, plan.id_field,
                                                                                 action="updateOnly"))
        self.store.people.forget_accounts(self.team_id, self.connection_id, [a.lower() for a in account_ids])
        if flagged:
            log.info("%d people of %d deleted accounts flagged for %s", flagged, len(account_ids), self.connection_id)
        return flagged

    def _planned_fields(self) -> set[str]:
        return {f.name for f in self.plans.fields_to_create} | set(self.plans.fields_existing)

    # -- Marketo ---------------------------------------------------------------------------------------
    def _persons(self, filters: Iterable[tuple[str, list[str]]]) -> list[Person]:
        lead_field = self.lead_plan.id_field if self.lead_plan else None
        contact_field = self.contact_plan.id_field if self.contact_plan else None
        fields = ["id", *(f for f in (lead_field, contact_field) if f)]
        found: dict[int, Person] = {}
        for filter_type, values in filters:
            for row in self.marketo.get_leads(filter_type, sorted(set(values)), fields):
                found[int(row["id"])] = Person(int(row["id"]), row.get(lead_field or ""), row.get(contact_field or ""))
        return list(found.values())

    def _merge(self, resolution: Resolution, why: str) -> None:
        if resolution.winner is None or not resolution.losers:
            return
        try:
            self.marketo.merge_leads(resolution.winner, list(resolution.losers))
        except MarketoError as exc:
            if exc.code != GONE:
                raise
            log.info("merge into Marketo person %s skipped: %s", resolution.winner, exc)
            return
        losers = ", ".join(map(str, resolution.losers))
        self.audit.record(self.team_id, SYSTEM, PEOPLE_MERGED, self.connection_id,
                          f"Marketo person {losers} merged into {resolution.winner}: {why}")

    def _rekey(self, rows: list[dict]) -> None:
        if rows:
            self.marketo.sync_leads(rows, "id", action="updateOnly")
