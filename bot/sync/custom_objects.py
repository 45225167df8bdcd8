"""Custom Dataverse tables as Marketo custom objects, one way (issue #14 point 6): which tables can be
synced, and the plan for one. Pure functions; the plan checks Marketo's documented limits so that
nothing is discovered at write time.

A table can be synced when it reaches a lead or contact through at most two lookups (its own lookup, or
a lookup to another custom table that has one): each record is linked to that person in Marketo. Tables
that reach only an account are listed with the reason they cannot be synced: Marketo links a custom
object to a person.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from pydantic import BaseModel

from bot.custom_object_models import (
    CustomObjectField,
    CustomObjectPlan,
    PersonLink,
    RefusedColumn,
    TableLookup,
)
from bot.dynamics.custom_tables import CustomTableMeta
from bot.models import AttributeMeta, Entity
from bot.sync.mapping import (
    MAX_DISPLAY_NAME,
    MAX_FIELD_NAME,
    _camel,
    _fit,
    _short_hash,
    is_syncable,
    marketo_type,
)

MAX_OBJECT_TYPES = 10
MAX_OBJECT_FIELDS = 50
MAX_OBJECT_COLUMNS = MAX_OBJECT_FIELDS - 2  # the dedupe id and the person link take two of the fields
MAX_HOPS = 2
PEOPLE = frozenset({"lead", "contact"})
ROOTS = PEOPLE | {"account"}


class ReachableTable(BaseModel):
    table: CustomTableMeta
    hops: list[TableLookup]  # from the table to lead, contact or account
    via: CustomTableMeta | None = None  # the middle table of two hops
    refusal: str | None = None  # why it cannot be synced, when it cannot

    @property
    def root(self) -> str:
        return self.hops[-1].target


def _chains(table: CustomTableMeta, tables: dict[str, CustomTableMeta]) -> list[list[TableLookup]]:
    chains: list[list[TableLookup]] = []
    for lookup in table.lookups:
        if lookup.target in ROOTS:
            chains.append([lookup])
        elif (middle := tables.get(lookup.target)) is not None and middle.logical_name != table.logical_name:
            chains += [[lookup, onward] for onward in middle.lookups if onward.target in ROOTS]
    return chains


def reachable_tables(tables: list[CustomTableMeta]) -> list[ReachableTable]:
    """Tables reaching a person (or an account) in ≤ MAX_HOPS lookups, by display name; for each, the
    chain used: a person over an account, then the shortest, then the first lookup by name."""
    by_name = {t.logical_name: t for t in tables}
    found = []
    for table in tables:
        chains = _chains(table, by_name)
        if not chains:
            continue
        best = min(chains, key=lambda c: (c[-1].target not in PEOPLE, len(c), [h.attribute for h in c]))
        refusal = None if best[-1].target in PEOPLE else (
            "it reaches only an account, and a Marketo custom object links to a person")
        found.append(ReachableTable(table=table, hops=best, refusal=refusal,
                                    via=by_name[best[0].target] if len(best) > 1 else None))
    return sorted(found, key=lambda r: (r.table.display_name.lower(), r.table.logical_name))


def _lower_camel(logical_name: str) -> str:
    camel = _camel(logical_name)
    return camel[:1].lower() + camel[1:]


def api_name(table: str) -> str:
    """The API name of the table's custom object type."""
    name = f"dyn{_camel(table)}"
    return name if len(name) <= MAX_FIELD_NAME else _fit(name, "_" + _short_hash(table))


def _field_name(table: str, logical_name: str, taken: set[str]) -> str:
    """Letters, digits and `_`, starting with a letter, ≤ MAX_FIELD_NAME, unique (case-insensitively)."""
    name = _lower_camel(logical_name) or "field"
    if not name[0].isalpha():
        name = f"f{name}"
    if len(name) > MAX_FIELD_NAME:
        name = _fit(name, "_" + _short_hash(table, logical_name))
    attempt, candidate = 0, name
    while candidate.lower() in taken:
        attempt += 1
        candidate = _fit(name, "_" + _short_hash(table, logical_name, str(attempt)))
    return candidate


def _display(text: str) -> str:
    return _fit(" ".join("".join(c if c.isalnum() else " " for c in text).split()), "", MAX_DISPLAY_NAME)


def _not_columns(reach: ReachableTable) -> set[str]:
    """The table's own id and its one-hop person lookup: written as the dedupe id and the link, not as fields."""
    return {reach.table.primary_id} | ({reach.hops[0].attribute} if len(reach.hops) == 1 else set())


def syncable_columns(reach: ReachableTable) -> list[AttributeMeta]:
    """The columns that can become fields of the table's custom object, in the table's order (the admin
    chooses among these; by default all of them are planned)."""
    skip = _not_columns(reach)
    return [a for a in reach.table.attributes if a.logical_name not in skip and is_syncable(a)]


def _over_limit(api: str, existing: set[str]) -> str:
    if len(existing) <= 2:
        return f"Marketo allows {MAX_OBJECT_FIELDS} fields on a custom object, 2 of them the id and the person link"
    return (f"Marketo allows {MAX_OBJECT_FIELDS} fields on a custom object; {api} already has {len(existing)} "
            "(those of columns no longer synced still count: Marketo cannot delete a field)")


def plan_custom_object(reach: ReachableTable, columns: list[str], existing_types: set[str],
                       existing_fields: frozenset[str]) -> CustomObjectPlan:
    """The custom object type, its fields and its link for one selected table. Columns that cannot fit
    (unsupported type, over Marketo's field count) are listed in `refused` with the reason.
    `existing_fields` are those the type already has in Marketo: they all count toward its field limit,
    since Marketo cannot delete a field."""
    table = reach.table
    if reach.refusal:
        raise ValueError(f"{table.display_name} cannot be synced: {reach.refusal}")
    person = Entity(reach.root)
    link = PersonLink(person=person.value, hops=reach.hops, lead_field=person.marketo_id_field,
                      via_entity_set=reach.via.entity_set if reach.via else None,
                      via_primary_id=reach.via.primary_id if reach.via else None)
    api = api_name(table.logical_name)
    dedupe = f"{api}Id"[:MAX_FIELD_NAME]
    taken = {dedupe.lower(), link.field_name.lower(), "marketoguid"}
    existing = {f.lower() for f in existing_fields} | {dedupe.lower(), link.field_name.lower()}
    counted = set(existing)
    attributes = {a.logical_name: a for a in table.attributes}
    fields: list[CustomObjectField] = []
    refused: list[RefusedColumn] = []
    skip = _not_columns(reach)
    for column in dict.fromkeys(columns):
        attr = attributes.get(column)
        if column in skip:
            continue
        if attr is None:
            refused.append(RefusedColumn(source=column, reason=f"no longer on {table.logical_name} in Dynamics"))
        elif not is_syncable(attr):
            refused.append(RefusedColumn(source=column, reason=f"{attr.attribute_type.removesuffix('Type')} "
                                                               "columns cannot be synced to Marketo"))
        elif (name := _field_name(table.logical_name, column, taken)).lower() not in counted \
                and len(counted) >= MAX_OBJECT_FIELDS:
            refused.append(RefusedColumn(source=column, reason=_over_limit(api, existing)))
        else:
            taken.add(name.lower())
            counted.add(name.lower())
            fields.append(CustomObjectField(
                source=column, read_name=attr.read_name, attribute_type=attr.attribute_type,
                datetime_behavior=attr.datetime_behavior, name=name,
                display_name=_display(attr.display_name) or name, data_type=marketo_type(attr)))
    if api not in existing_types and len(existing_types) >= MAX_OBJECT_TYPES:
        raise ValueError(f"{table.display_name} cannot be synced: Marketo allows {MAX_OBJECT_TYPES} custom "
                         f"object types and this instance has {len(existing_types)}")
    display = _display(f"Dyn {table.display_name}")
    return CustomObjectPlan(
        table=table.logical_name, entity_set=table.entity_set, primary_id=table.primary_id,
        change_tracking=table.change_tracking, api_name=api, display_name=display,
        plural_name=_fit(f"{display}s", "", MAX_DISPLAY_NAME), dedupe_field=dedupe, link=link,
        fields=fields, refused=refused)


def plan_custom_objects(reachable: list[ReachableTable], selected: dict[str, list[str]], existing_types: set[str],
                        existing_fields: Mapping[str, frozenset[str]] = MappingProxyType({}),
                        ) -> tuple[list[CustomObjectPlan], list[RefusedColumn]]:
    """Plans for the selected tables, and the tables refused whole (source = table, with the reason).
    Types planned earlier in the list count toward Marketo's limit of MAX_OBJECT_TYPES; `existing_fields`
    are the fields of the instance's types, by API name."""
    plans: list[CustomObjectPlan] = []
    refused: list[RefusedColumn] = []
    by_name = {r.table.logical_name: r for r in reachable}
    types = set(existing_types)
    for table, columns in selected.items():
        reach = by_name.get(table)
        if reach is None:
            refused.append(RefusedColumn(source=table, reason="it does not reach a lead, contact or account "
                                                              f"in {MAX_HOPS} lookups"))
            continue
        try:
            plan = plan_custom_object(reach, columns, types, existing_fields.get(api_name(table), frozenset()))
        except ValueError as exc:
            refused.append(RefusedColumn(source=table, reason=str(exc)))
            continue
        types.add(plan.api_name)
        plans.append(plan)
    return plans, refused


def record_values(plan: CustomObjectPlan, record: dict[str, object], person_id: str) -> dict[str, object]:
    """One Dataverse record as the custom object's input: dedupe id, person link, planned fields."""
    values: dict[str, object] = {plan.dedupe_field: record[plan.primary_id], plan.link.field_name: person_id}
    values.update({f.name: record.get(f.read_name) for f in plan.fields})
    return values
