"""People linked to their companies, records to their owners: the CRM model in Marketo (reference B4, B5).

A contact's company is its parent account (`parentcustomerid` when that points to an account), a lead's
its `parentaccountid`; the Marketo person carries the account id in `externalCompanyId`, and Marketo then
shows the company's fields on the person. Owners (`ownerid` when it is a user, not a team) become Marketo
sales persons keyed on `externalSalesPersonId` = systemuserid, carried by people and companies.

The rules here are pure: which lookups a plan reads (`plan_lookups`), the link values of one record
(`link_values`, used by the converter) and what a linked person may not send (`COMPANY_FIELDS_ON_PERSON`).
`LinkedWrites` applies them around the Marketo writes of one entity, with what Redis knows (on the REST path
in `sync_leads`; the Bulk Import path calls `prepare_people` and `people_written` around its CSV rows):

- a person links only to an account already written as a company (else Marketo would have no company to
  show); one written before its account waits in Redis and is linked (update only) when the account is;
- owners are upserted as sales persons (batched) before the records that name them; an owner that cannot
  be read or written is left off the record rather than failing it (Marketo refuses an unknown one, 718).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from bot.dynamics.users import DynamicsUser, read_users
from bot.errors import BotError
from bot.marketo.models import RecordResult
from bot.models import Entity, EntityMetadata, EntityPlan
from bot.store.links import CrmLinks

if TYPE_CHECKING:
    from bot.sync.ports import SyncServices

log = logging.getLogger(__name__)

COMPANY_ID = "externalCompanyId"
SALES_PERSON_ID = "externalSalesPersonId"
LOOKUP_TARGET = "@Microsoft.Dynamics.CRM.lookuplogicalname"
ACCOUNT_LOOKUPS: dict[Entity, str] = {Entity.contact: "parentcustomerid", Entity.lead: "parentaccountid",
                                      Entity.opportunity: "parentaccountid"}
OWNER_ATTRIBUTE = "ownerid"
# Company fields a person shows from its company: Sync Leads may not set them on a linked person (1021).
COMPANY_FIELDS_ON_PERSON = frozenset({
    "company", "website", "mainPhone", "billingStreet", "billingCity", "billingState", "billingPostalCode",
    "billingCountry", "annualRevenue", "numberOfEmployees", "industry", "sicCode", "site",
})
TEAM_OWNED = ("Records owned by a team keep no owner in Marketo: Marketo's sales persons are people, "
              "and a Dynamics team is not a user.")
WRITTEN = frozenset({"created", "updated"})

Users = Callable[[list[str]], list[DynamicsUser]]  # Dynamics user ids → the users found


def plan_lookups(metadata: EntityMetadata, accounts_planned: bool) -> tuple[str | None, str | None]:
    """(company lookup, owner lookup) read names for an entity: a person's account only when accounts are
    in the plan (else no company is ever written to link to); the owner whenever the table has one."""
    company = None
    name = ACCOUNT_LOOKUPS.get(metadata.entity)
    attr = metadata.attribute(name) if name and accounts_planned else None
    if attr is not None and attr.attribute_type in {"LookupType", "CustomerType"}:
        company = attr.read_name
    owner = metadata.attribute(OWNER_ATTRIBUTE)
    return company, owner.read_name if owner is not None and owner.attribute_type == "OwnerType" else None


def lookup_to(record: dict, read_name: str, target: str) -> str | None:
    """The id in lookup `read_name` when it points to a `target` row. Dataverse names the target table in an
    annotation (the client always asks for it); without it a lookup is not trusted, since a Customer or Owner
    lookup can point to several tables."""
    value = record.get(read_name)
    if not value:
        return None
    return str(value) if record.get(read_name + LOOKUP_TARGET) == target else None


def link_values(record: dict, plan: EntityPlan) -> dict[str, str]:
    """The Marketo link fields of one Dataverse record: its company (people only) and its sales person."""
    values: dict[str, str] = {}
    if plan.company_lookup and plan.entity != Entity.account:
        account = lookup_to(record, plan.company_lookup, "account")
        if account:
            values[COMPANY_ID] = account
    if plan.owner_lookup:
        owner = lookup_to(record, plan.owner_lookup, "systemuser")
        if owner:
            values[SALES_PERSON_ID] = owner
    return values


def linked_person(record: dict) -> dict:
    """A person written with its company link: without the company's own fields (Marketo shows the company's)."""
    return {name: value for name, value in record.items() if name not in COMPANY_FIELDS_ON_PERSON}


def sales_person(user: DynamicsUser) -> dict[str, str]:
    """A Marketo sales person for a Dynamics user: names from first/last, else split from the full name."""
    first, last = user.firstname, user.lastname
    if not (first or last) and user.fullname:
        first, _, last = user.fullname.strip().rpartition(" ")
        first, last = (first, last) if first else (None, last)
    person = {SALES_PERSON_ID: user.systemuserid, "email": user.internalemailaddress,
              "firstName": first, "lastName": last}
    return {name: value for name, value in person.items() if value}


def linked_writes(services: SyncServices, team_id: str, connection_id: str, plan: EntityPlan,
                  source: Any) -> LinkedWrites:
    """The process's Marketo client for `plan`'s writes, owners read from Dynamics through `source`."""
    store = services.store
    return LinkedWrites(services.marketo(), plan, store.links, team_id, connection_id,
                        lambda ids: read_users(source, ids),
                        lambda lead_ids: store.people.qualified(team_id, connection_id, lead_ids))


class LinkedWrites:
    """The Marketo client for one entity's writes, with its records' company and owner links applied.

    Everything else (reads, field creation, call counts) goes to the client unchanged."""

    def __init__(self, marketo: Any, plan: EntityPlan, links: CrmLinks, team_id: str, connection_id: str,
                 users: Users, qualified: Callable[[list[str]], Mapping[str, str]] = lambda ids: {}) -> None:
        self._marketo, self._plan, self._links = marketo, plan, links
        self._team_id, self._connection_id, self._users = team_id, connection_id, users
        self._qualified = qualified  # lead id → its contact's id: such a person takes the contact's company

    def __getattr__(self, name: str) -> Any:
        return getattr(self._marketo, name)

    def sync_leads(self, records: list[dict], lookup_field: str, action: str = "createOrUpdate") -> list[RecordResult]:
        waiting = self.prepare_people(records)
        results = self._marketo.sync_leads([r for r, _ in waiting], lookup_field, action=action)
        results = self._without_company_fields(waiting, results, lookup_field, action)
        self.people_written([(record, account) for (record, account), result
                             in zip(waiting, results, strict=True) if result.status in WRITTEN])
        return results

    def prepare_people(self, records: list[dict]) -> list[tuple[dict, str | None]]:
        """Each person as it is to be written (owners upserted, company link only to a written account, no
        company fields when linked), with the account it still waits for (None: none)."""
        return self._link_companies(self._with_owners(records))

    def people_as_sent(self, records: list[dict]) -> list[dict]:
        """Each person as `sync_leads` sends it, as far as its company goes (linked: without the company's fields,
        which Marketo shows from the company); writes nothing. What the mass-change brake compares."""
        return [record for record, _ in self._link_companies(records)]

    def people_written(self, people: list[tuple[dict, str | None]]) -> None:
        """People now in Marketo: those written without their account wait for it, the others for nothing."""
        if self._plan.company_lookup:
            self._wait_for_companies(people)

    def _without_company_fields(self, waiting: list[tuple[dict, str | None]], results: list[RecordResult],
                                lookup_field: str, action: str) -> list[RecordResult]:
        """Persons Marketo refused because they are linked to a company already (1021: a qualified lead's
        person, or a person whose account moved to one not written yet) are sent again without the company's
        fields: Marketo shows the linked company's, and the new link follows once its account is written."""
        refused = [i for i, result in enumerate(results) if any(r.code == "1021" for r in result.reasons)]
        if not refused:
            return results
        again = self._marketo.sync_leads([linked_person(waiting[i][0]) for i in refused], lookup_field, action=action)
        merged = list(results)
        for i, result in zip(refused, again, strict=True):
            merged[i] = result
        return merged

    def sync_opportunities(self, records: list[dict], action: str = "createOrUpdate") -> list[RecordResult]:
        """Opportunities with their owners upserted first; their company link needs no wait, since the initial
        sync writes them after the accounts (`bot.sync.opportunities.PREREQUISITES`)."""
        return self._marketo.sync_opportunities(self._with_owners(records), action=action)

    def sync_companies(self, records: list[dict], action: str = "createOrUpdate") -> list[RecordResult]:
        results = self._marketo.sync_companies(self._with_owners(records), action=action)
        written = [str(r[COMPANY_ID]) for r, result in zip(records, results, strict=True) if result.status in WRITTEN]
        self._links.mark_companies_written(self._team_id, self._connection_id, written)
        self._link_waiters(self._links.company_waiters(self._team_id, self._connection_id, written))
        return results

    # -- owners ---------------------------------------------------------------------------------------
    def _with_owners(self, records: list[dict]) -> list[dict]:
        owners = {str(r[SALES_PERSON_ID]) for r in records if r.get(SALES_PERSON_ID)}
        if not owners:
            return records
        known = self._sales_persons(owners)
        return [r if r.get(SALES_PERSON_ID) in known or not r.get(SALES_PERSON_ID)
                else {k: v for k, v in r.items() if k != SALES_PERSON_ID} for r in records]

    def _sales_persons(self, owners: set[str]) -> set[str]:
        """The owners that are Marketo sales persons, after upserting the ones not known yet (batched)."""
        team_id, connection_id = self._team_id, self._connection_id
        known = self._links.sales_persons_known(team_id, connection_id, owners)
        missing = sorted(owners - known)
        if not missing:
            return known
        try:
            users = self._users(missing)
        except BotError as exc:  # the records still sync; their owners follow once Dynamics answers
            log.warning("owners of %s records could not be read from Dynamics: %s", self._plan.entity.value, exc)
            users = []
        persons = [sales_person(user) for user in users]
        results = self._marketo.sync_sales_persons(persons) if persons else []
        written = [p[SALES_PERSON_ID] for p, result in zip(persons, results, strict=True) if result.status in WRITTEN]
        self._links.remember_sales_persons(team_id, connection_id, written)
        if len(written) < len(missing):
            log.warning("%d owners of %s records are not Marketo sales persons (not found in Dynamics or "
                        "refused by Marketo): those records are written without an owner",
                        len(missing) - len(written), self._plan.entity.value)
        return known | set(written)

    # -- companies ------------------------------------------------------------------------------------
    def _link_companies(self, records: list[dict]) -> list[tuple[dict, str | None]]:
        """Each person as it is written, with the account it still waits for (None: linked now, or no account)."""
        accounts = {str(r[COMPANY_ID]) for r in records if r.get(COMPANY_ID)}
        if not accounts:
            return [(r, None) for r in records]
        written = self._links.companies_written(self._team_id, self._connection_id, accounts)
        out: list[tuple[dict, str | None]] = []
        for record in records:
            account = record.get(COMPANY_ID)
            if not account or account in written:
                out.append((linked_person(record) if account else record, None))
            else:
                out.append(({k: v for k, v in record.items() if k != COMPANY_ID}, str(account)))
        return out

    def _wait_for_companies(self, people: list[tuple[dict, str | None]]) -> None:
        """People written without their account (not written yet) wait for it, the others for nothing; one
        whose account was written meanwhile (by another worker) is linked at once."""
        waiters: dict[str, list[str]] = {}
        settled: list[str] = []
        for record, account in people:
            member = f"{self._plan.entity.value}:{record[self._plan.id_field]}"
            if account:
                waiters.setdefault(account, []).append(member)
            else:
                settled.append(member)
        self._links.wait_for_companies(self._team_id, self._connection_id, waiters, settled)
        written = self._links.companies_written(self._team_id, self._connection_id, waiters)
        self._link_waiters(self._links.company_waiters(self._team_id, self._connection_id, sorted(written)))

    def _link_waiters(self, waiters: dict[str, list[str]]) -> None:
        """Write the company link of waiting people (update only: they are in Marketo already)."""
        if not waiters:
            return
        by_entity: dict[Entity, list[dict]] = {}
        leads = [m.partition(":")[2] for people in waiters.values() for m in people if m.startswith("lead:")]
        qualified = self._qualified(leads) if leads else {}
        for account, people in waiters.items():
            for member in people:
                entity, _, person_id = member.partition(":")
                if entity == Entity.lead.value and person_id in qualified:
                    continue  # its person is its contact's now, linked to the contact's account
                by_entity.setdefault(Entity(entity), []).append({Entity(entity).marketo_id_field: person_id,
                                                                 COMPANY_ID: account})
        for entity, updates in by_entity.items():
            results = self._marketo.sync_leads(updates, entity.marketo_id_field, action="updateOnly")
            refused = [r for r in results if r.status not in WRITTEN and not _gone(r)]
            if refused:
                log.warning("%d %ss could not be linked to their company: %s", len(refused), entity.value,
                            "; ".join(f"{reason.code} {reason.message}" for r in refused[:3] for reason in r.reasons))
        self._links.linked(self._team_id, self._connection_id, waiters)


def _gone(result: RecordResult) -> bool:
    """Skipped as not found (1004): the person left Marketo; nothing to link."""
    return any(reason.code == "1004" for reason in result.reasons)


def contact_owned(plan: EntityPlan) -> set[str]:
    """The Marketo fields a contact writes, its company and owner links included (and with the company link,
    the company's fields Marketo shows on the person): on a person that is also a qualified lead, the
    contact's values win there."""
    links = {name for name, lookup in ((COMPANY_ID, plan.company_lookup), (SALES_PERSON_ID, plan.owner_lookup))
             if lookup}
    shown = COMPANY_FIELDS_ON_PERSON if plan.company_lookup else frozenset()
    return {m.marketo_name for m in plan.mappings} | links | shown
