"""Compare what the Marketo emulator holds with what Dataverse says a correct sync writes:
every record (filter applied) present once, keyed on its Dataverse id, each field equal. A person linked
to a company (`externalCompanyId`) shows that company's fields, as Marketo does."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bot.models import Entity, EntityPlan, FieldPlan
from bot.sync.convert import ConversionError, convert_record
from bot.sync.links import COMPANY_FIELDS_ON_PERSON, COMPANY_ID, SALES_PERSON_ID, contact_owned
from bot.sync.mapping import PERSON_ENTITIES
from bot.sync.opportunities import as_sent
from sandbox.dynamics import DynamicsEmulator
from sandbox.marketo import MarketoEmulator

MAX_EXAMPLES = 5


@dataclass
class EntityCheck:
    entity: str
    expected: int = 0
    found: int = 0
    missing: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    unconvertible: int = 0
    mismatches: list[tuple[str, str, Any, Any]] = field(default_factory=list)  # (id, field, expected, actual)

    @property
    def ok(self) -> bool:
        return not (self.missing or self.duplicates or self.mismatches)


@dataclass
class VerifyReport:
    entities: list[EntityCheck]

    @property
    def ok(self) -> bool:
        return all(check.ok for check in self.entities)

    def describe(self) -> str:
        lines = ["Marketo checked against Dynamics, field by field:"]
        for c in self.entities:
            mark = "✓" if c.ok else "✗"
            lines.append(f"  {mark} {c.entity}: {c.found}/{c.expected} records present, {len(c.missing)} missing, "
                         f"{len(c.duplicates)} duplicated, {len(c.mismatches)} field mismatches")
            lines += [f"      missing {i}" for i in c.missing[:MAX_EXAMPLES]]
            lines += [f"      {i}.{f}: expected {e!r}, Marketo has {a!r}" for i, f, e, a in c.mismatches[:MAX_EXAMPLES]]
        return "\n".join(lines)


def _same(expected: Any, actual: Any) -> bool:
    if isinstance(expected, float) or isinstance(actual, float):
        try:
            return math.isclose(float(expected), float(actual), rel_tol=1e-9, abs_tol=0.005)
        except (TypeError, ValueError):
            return False
    if isinstance(expected, str) and isinstance(actual, str) and "T" in expected and expected[:4].isdigit():
        try:
            return datetime.fromisoformat(expected) == datetime.fromisoformat(actual)
        except ValueError:
            pass
    return expected == actual


def check_entity(dynamics: DynamicsEmulator, rows: list[dict[str, Any]], plan: EntityPlan,
                 contact_plan: EntityPlan | None = None,
                 companies: dict[str, dict[str, Any]] | None = None) -> EntityCheck:
    """With `contact_plan`, a lead whose person also holds a contact (it was qualified) is not compared on the
    fields the contact syncs: the contact's values win there. `companies` (by `externalCompanyId`): what a
    person linked to one shows instead of its own company fields. That is the company Marketo links it to: a
    person leaves a company only by joining another, so a qualified lead's contact with no account keeps the
    lead's."""
    check = EntityCheck(entity=plan.entity.value)
    owned_by_contact = contact_owned(contact_plan) if contact_plan else set()
    counts = Counter(row.get(plan.id_field) for row in rows if row.get(plan.id_field))
    check.duplicates = [key for key, n in counts.items() if n > 1]
    by_id = {row[plan.id_field]: row for row in rows if row.get(plan.id_field)}
    select = plan.select[1:]  # the mapped columns, the sync filter and the link lookups
    for record in dynamics.expected_records(plan.entity.value, select, annotate=True):
        try:
            expected = as_sent([convert_record(record, plan)])[0]  # what Marketo receives
        except ConversionError:
            check.unconvertible += 1
            continue
        check.expected += 1
        key = expected[plan.id_field]
        actual = by_id.get(key)
        if actual is None:
            check.missing.append(key)
            continue
        check.found += 1
        company = (companies or {}).get(actual.get(COMPANY_ID, ""))
        if plan.entity in PERSON_ENTITIES and company is not None:
            expected.update({name: company.get(name) for name in COMPANY_FIELDS_ON_PERSON if name in expected})
        skipped = owned_by_contact if contact_plan and actual.get(contact_plan.id_field) else set()
        check.mismatches += [(key, name, value, actual.get(name)) for name, value in expected.items()
                             if name not in skipped and not _same(value, actual.get(name))]
    return check


def verify_sync(dynamics: DynamicsEmulator, marketo: MarketoEmulator, plan: FieldPlan) -> VerifyReport:
    leads, companies, opportunities = marketo.leads(), marketo.companies(), marketo.opportunities()
    contacts = plan.for_entity(Entity.contact)
    by_id = {str(c["externalCompanyId"]): c for c in companies}

    def check(p: EntityPlan) -> EntityCheck:
        if p.entity in PERSON_ENTITIES:
            return check_entity(dynamics, leads, p, contacts if p.entity == Entity.lead else None, by_id)
        return check_entity(dynamics, opportunities if p.entity == Entity.opportunity else companies, p)

    return VerifyReport([check(p) for p in plan.entities])


def one_person(marketo: MarketoEmulator, lead_id: str, contact_id: str) -> tuple[bool, str]:
    """Whether a qualified lead and its contact are one Marketo person, and a line saying so."""
    lead_field, contact_field = Entity.lead.marketo_id_field, Entity.contact.marketo_id_field
    held = [row["id"] for row in marketo.leads() if row.get(lead_field) == lead_id or row.get(contact_field) == contact_id]
    if len(held) == 1:
        return True, f"  ✓ the qualified lead {lead_id} and its contact are one Marketo person (id {held[0]})"
    return False, f"  ✗ the qualified lead {lead_id} and its contact are {len(held)} Marketo persons: {held}"


def linked_contact(marketo: MarketoEmulator) -> str:
    """One contact as Marketo shows it, with its company and its owner (the demo prints it)."""
    owners = {p["externalSalesPersonId"]: p for p in marketo.sales_persons()}
    contact = next((row for row in marketo.leads() if row.get("dynamicsContactId") and row.get(COMPANY_ID)
                    and row.get(SALES_PERSON_ID) in owners), None)
    if contact is None:
        return "  no contact in Marketo is linked to a company and an owner"
    owner = owners[contact[SALES_PERSON_ID]]
    return (f"  {contact.get('firstName')} {contact.get('lastName')} <{contact.get('email')}> works at "
            f"“{contact.get('company')}” ({COMPANY_ID} {contact[COMPANY_ID]}); owner "
            f"{owner.get('firstName')} {owner.get('lastName')} <{owner.get('email')}> "
            f"({SALES_PERSON_ID} {owner[SALES_PERSON_ID]})")
