"""Custom Dataverse tables the emulator serves beside lead, contact and account.

`new_project` points at a contact (`new_contactid`); `new_projectnote` points at a project, so it reaches a
person in two hops. Metadata as Dataverse documents it: `EntityDefinitions` carry `IsCustomEntity`,
lookups appear as `ManyToOneRelationships` (`ReferencingAttribute` -> `ReferencedEntity`).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Column:
    logical_name: str
    display_name: str
    type_name: str  # AttributeTypeName, e.g. "StringType"
    format: str | None = None
    behavior: str | None = None
    target: str | None = None  # the table a LookupType column points to


@dataclass(frozen=True)
class CustomTable:
    logical_name: str
    entity_set: str
    display_name: str
    primary_name: str
    columns: tuple[Column, ...]

    @property
    def primary_id(self) -> str:
        return f"{self.logical_name}id"

    def lookups(self) -> dict[str, str]:
        return {c.logical_name: c.target for c in self.columns if c.target is not None}


CUSTOM_TABLES: dict[str, CustomTable] = {t.logical_name: t for t in (
    CustomTable("new_project", "new_projects", "Project", "new_name", (
        Column("new_name", "Project Name", "StringType", format="Text"),
        Column("new_budget", "Budget", "MoneyType"),
        Column("new_seats", "Seats", "IntegerType"),
        Column("new_startdate", "Start Date", "DateTimeType", behavior="DateOnly"),
        Column("new_isactive", "Is Active", "BooleanType"),
        Column("new_contactid", "Contact", "LookupType", target="contact"),
    )),
    CustomTable("new_projectnote", "new_projectnotes", "Project Note", "new_subject", (
        Column("new_subject", "Subject", "StringType", format="Text"),
        Column("new_projectid", "Project", "LookupType", target="new_project"),
    )),
)}


def relationship_rows(entity: str) -> list[dict[str, object]]:
    """`EntityDefinitions(LogicalName=entity)/ManyToOneRelationships`: one row per lookup of a custom table."""
    table = CUSTOM_TABLES.get(entity)
    if table is None:
        return []
    return [{"SchemaName": f"{target}_{entity}_{column}", "ReferencingEntity": entity,
             "ReferencingAttribute": column, "ReferencedEntity": target,
             "ReferencedAttribute": f"{target}id",
             "ReferencingEntityNavigationPropertyName": column}
            for column, target in table.lookups().items()]
