"""Compare what the Marketo emulator holds with what Dataverse says a correct sync writes:
every record (filter applied) present once, keyed on its Dataverse id, each field equal."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bot.models import Entity, EntityPlan, FieldPlan
from bot.sync.convert import ConversionError, convert_record
from bot.sync.mapping import PERSON_ENTITIES
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


def check_entity(dynamics: DynamicsEmulator, rows: list[dict[str, Any]], plan: EntityPlan) -> EntityCheck:
    check = EntityCheck(entity=plan.entity.value)
    counts = Counter(row.get(plan.id_field) for row in rows if row.get(plan.id_field))
    check.duplicates = [key for key, n in counts.items() if n > 1]
    by_id = {row[plan.id_field]: row for row in rows if row.get(plan.id_field)}
    select = [m.read_name for m in plan.mappings]
    for record in dynamics.expected_records(plan.entity.value, select, annotate=True):
        try:
            expected = convert_record(record, plan)
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
        check.mismatches += [(key, name, value, actual.get(name)) for name, value in expected.items()
                             if not _same(value, actual.get(name))]
    return check


def verify_sync(dynamics: DynamicsEmulator, marketo: MarketoEmulator, plan: FieldPlan) -> VerifyReport:
    leads, companies, opportunities = marketo.leads(), marketo.companies(), marketo.opportunities()

    def rows(entity: Entity) -> list[dict[str, Any]]:
        return leads if entity in PERSON_ENTITIES else opportunities if entity == Entity.opportunity else companies

    return VerifyReport([check_entity(dynamics, rows(p.entity), p) for p in plan.entities])
