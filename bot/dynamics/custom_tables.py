"""Reads of custom Dataverse tables (issue #14 point 6): which exist with their lookups, and their records.

A mixin of `DataverseClient`: it uses the client's `get`, `url`, `_pages` and `attributes`.
Metadata as Dataverse documents it: `EntityDefinitions?$filter=IsCustomEntity eq true`, each table's
`ManyToOneRelationships` (ReferencingAttribute -> ReferencedEntity).
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx
from pydantic import BaseModel, ConfigDict, Field

from bot.custom_object_models import CustomObjectPlan, TableLookup
from bot.models import AttributeMeta

READ_BY_IDS_CHUNK = 50  # ids per `$filter=... or ...` query, as the client's read_by_ids


@dataclass(slots=True)
class TablePage:
    records: list[dict[str, Any]]
    delta_link: str | None


class CustomTableMeta(BaseModel):
    """A custom table as discovery reads it: metadata, attributes and ManyToOne lookups."""

    logical_name: str
    entity_set: str
    primary_id: str
    display_name: str
    change_tracking: bool = True
    attributes: list[AttributeMeta] = Field(default_factory=list)
    lookups: list[TableLookup] = Field(default_factory=list)


class _Label(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)
    label: str | None = Field(None, alias="Label")


class _DisplayName(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)
    user_label: _Label | None = Field(None, alias="UserLocalizedLabel")


class _Table(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)
    logical_name: str = Field(alias="LogicalName")
    entity_set: str = Field(alias="EntitySetName")
    primary_id: str = Field(alias="PrimaryIdAttribute")
    change_tracking: bool | None = Field(None, alias="ChangeTrackingEnabled")
    display_name: _DisplayName | None = Field(None, alias="DisplayName")


class _Relationship(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)
    attribute: str = Field(alias="ReferencingAttribute")
    target: str = Field(alias="ReferencedEntity")


def _rows(response: httpx.Response) -> list[Any]:
    return list(response.json().get("value", []))


class CustomTableReads:
    """The custom-table half of `DataverseClient` (a mixin)."""

    if TYPE_CHECKING:  # provided by DataverseClient
        def get(self, url: str, prefer: list[str] | None = None) -> httpx.Response: ...

        def url(self, path: str, params: dict[str, str] | None = None) -> str: ...

        def attributes(self, definition_path: str) -> list[AttributeMeta]: ...

        def _pages(self, url: str, link: str | None, prefer: list[str]) -> Iterator[tuple[Any, str | None]]: ...

        page_size: int

    def custom_tables(self) -> list[CustomTableMeta]:
        """Every custom table with its lookups, without columns (one read a table: an org may have hundreds;
        `with_columns` reads the columns of the few chosen)."""
        tables = [_Table.model_validate(row) for row in _rows(self.get(self.url("EntityDefinitions", {
            "$select": "LogicalName,EntitySetName,PrimaryIdAttribute,ChangeTrackingEnabled,DisplayName",
            "$filter": "IsCustomEntity eq true"})))]
        found = []
        for table in tables:
            path = f"EntityDefinitions(LogicalName='{table.logical_name}')"
            relations = [_Relationship.model_validate(r) for r in _rows(self.get(self.url(
                f"{path}/ManyToOneRelationships", {"$select": "ReferencingAttribute,ReferencedEntity"})))]
            label = table.display_name.user_label.label if table.display_name and table.display_name.user_label \
                else None
            found.append(CustomTableMeta(
                logical_name=table.logical_name, entity_set=table.entity_set, primary_id=table.primary_id,
                display_name=label or table.logical_name, change_tracking=table.change_tracking is not False,
                lookups=[TableLookup(table=table.logical_name, attribute=r.attribute, target=r.target)
                         for r in relations]))
        return found

    def with_columns(self, tables: list[CustomTableMeta], names: Collection[str]) -> list[CustomTableMeta]:
        """`tables`, those named in `names` with their readable columns read."""
        return [t.model_copy(update={"attributes": self.attributes(f"EntityDefinitions(LogicalName='{t.logical_name}')")})
                if t.logical_name in names else t for t in tables]

    def iter_table_pages(self, plan: CustomObjectPlan, delta_link: str | None = None) -> Iterator[TablePage]:
        """The table's records page by page (with change tracking, the last page carries the delta link);
        from `delta_link`, only what changed since (deleted rows are not synced: one way, upserts only).
        Raw values only: custom objects take them as they are, no formatted labels."""
        prefer = [f"odata.maxpagesize={self.page_size}"]
        if plan.change_tracking:
            prefer.append("odata.track-changes")
        url = delta_link or self.url(plan.entity_set, {"$select": ",".join(plan.select)})
        for body, _ in self._pages(url, delta_link, prefer):
            records = [r for r in body.value if r.get("reason") != "deleted" and plan.primary_id in r]
            yield TablePage(records=records, delta_link=body.delta_link)

    def lookup_values(self, entity_set: str, primary_id: str, ids: list[str], read_name: str) -> dict[str, str]:
        """`read_name` (a lookup) of the records `ids` of a table: the second hop of a person link."""
        found: dict[str, str] = {}
        wanted = sorted({str(uuid.UUID(i)) for i in ids})
        for start in range(0, len(wanted), READ_BY_IDS_CHUNK):
            chunk = wanted[start:start + READ_BY_IDS_CHUNK]
            params = {"$select": f"{primary_id},{read_name}",
                      "$filter": " or ".join(f"{primary_id} eq {i}" for i in chunk)}
            for body, _ in self._pages(self.url(entity_set, params), None, []):
                found.update({str(r[primary_id]): str(r[read_name]) for r in body.value if r.get(read_name)})
        return found
