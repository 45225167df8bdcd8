"""Models of custom Dataverse tables synced one way to Marketo custom objects (issue #14 point 6).

Kept apart from `bot.models` so the plan stays loadable: `FieldPlan.custom_objects` defaults empty.
"""

from __future__ import annotations

from pydantic import BaseModel, Field


class TableLookup(BaseModel):
    """A ManyToOne relationship: `table.attribute` points at a record of `target`."""

    table: str
    attribute: str  # ReferencingAttribute (logical name); read as `_attribute_value`
    target: str  # ReferencedEntity

    @property
    def read_name(self) -> str:
        return f"_{self.attribute}_value"


class CustomObjectField(BaseModel):
    """One Dataverse column of a custom table and the Marketo custom-object field it fills."""

    source: str  # Dataverse logical name
    read_name: str
    attribute_type: str
    datetime_behavior: str | None = None
    name: str  # Marketo field API name
    display_name: str
    data_type: str  # Marketo dataType; "link" for the person link


class RefusedColumn(BaseModel):
    source: str
    reason: str


class PersonLink(BaseModel):
    """How a record reaches the person it belongs to: lookups followed from the table, hop by hop."""

    person: str  # "lead" or "contact"
    hops: list[TableLookup]
    lead_field: str  # the Marketo lead field holding the person's Dataverse id, e.g. dynamicsContactId
    via_entity_set: str | None = None  # with two hops: the middle table, read for its lookup to the person
    via_primary_id: str | None = None

    @property
    def field_name(self) -> str:
        """The custom object's link field: named like the lead field it points to."""
        return self.lead_field


class CustomObjectPlan(BaseModel):
    table: str  # Dataverse logical name, e.g. new_project
    entity_set: str
    primary_id: str
    change_tracking: bool = True
    api_name: str  # Marketo custom object type
    display_name: str
    plural_name: str
    dedupe_field: str  # holds the record's Dataverse id
    link: PersonLink
    fields: list[CustomObjectField] = Field(default_factory=list)
    refused: list[RefusedColumn] = Field(default_factory=list)

    @property
    def select(self) -> list[str]:
        """`$select` for the table: its id, the planned columns and the first hop of the person link."""
        return list(dict.fromkeys([self.primary_id, *(f.read_name for f in self.fields),
                                   self.link.hops[0].read_name]))


class CustomObjectChange(BaseModel):
    """A custom table kept by a change of fields whose chosen columns changed (Dataverse logical names)."""

    plan: CustomObjectPlan  # the table's plan after the change
    added: list[str] = Field(default_factory=list)  # new fields on its custom object; its records are read again
    removed: list[str] = Field(default_factory=list)  # stop syncing; the fields stay in Marketo
