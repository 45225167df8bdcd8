"""Pydantic models for the Marketo REST responses the client depends on (reference C1-C11)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from bot.bounded_text import BoundedText
from bot.models import MarketoField


class _Loose(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class ApiError(_Loose):
    """`errors[]` / `reasons[]` item. Marketo sends `code` as a string; accept ints too. Both bounded."""

    code: BoundedText
    message: BoundedText = ""

    @field_validator("code", mode="before")
    @classmethod
    def _as_str(cls, value: object) -> str:
        return str(value)


Reason = ApiError


class Envelope(_Loose):
    request_id: str | None = Field(default=None, alias="requestId")
    success: bool
    result: list[Any] = Field(default_factory=list)
    errors: list[ApiError] = Field(default_factory=list)
    warnings: list[Any] = Field(default_factory=list)
    more_result: bool = Field(default=False, alias="moreResult")
    next_page_token: str | None = Field(default=None, alias="nextPageToken")


class TokenResponse(_Loose):
    access_token: str
    token_type: str = "bearer"
    expires_in: int
    scope: str | None = None


class RecordResult(_Loose):
    """The outcome of one input record of a Sync Leads / Sync Companies call (or a delete call: `deleted`)."""

    status: Literal["created", "updated", "deleted", "skipped"]
    id: int | None = None
    seq: int | None = None
    reasons: list[Reason] = Field(default_factory=list)


class LeadField(_Loose):
    """One describe2 field."""

    name: str
    display_name: BoundedText = Field(default="", alias="displayName")
    data_type: str = Field(alias="dataType")
    length: int | None = None
    updateable: bool = True
    crm_managed: bool = Field(default=False, alias="crmManaged")


class LeadDescription(_Loose):
    """describe2: the lead fields and which ones can be used as lookup/filter keys."""

    name: str = ""
    searchable_fields: list[list[str]] = Field(default_factory=list, alias="searchableFields")
    fields: list[LeadField] = Field(default_factory=list)

    def field(self, name: str) -> LeadField | None:
        lowered = name.lower()
        return next((f for f in self.fields if f.name.lower() == lowered), None)

    def is_searchable(self, name: str) -> bool:
        """Usable alone as a lookup/filter key (compound keys do not count)."""
        return [name] in self.searchable_fields


class SchemaField(_Loose):
    """One item of the lead field schema list (C8)."""

    name: str
    display_name: BoundedText = Field(default="", alias="displayName")
    description: BoundedText | None = None
    data_type: str = Field(alias="dataType")
    length: int | None = None
    is_hidden: bool = Field(default=False, alias="isHidden")
    is_custom: bool = Field(default=False, alias="isCustom")
    is_api_created: bool = Field(default=False, alias="isApiCreated")

    def to_field(self) -> MarketoField:
        return MarketoField(
            name=self.name,
            display_name=self.display_name,
            data_type=self.data_type,
            description=self.description or "",
        )


class FieldCreateResult(_Loose):
    name: str
    status: Literal["created", "updated", "skipped"]
    reasons: list[Reason] = Field(default_factory=list)


class CreateFieldsResult(BaseModel):
    created: list[str] = Field(default_factory=list)
    existing: list[str] = Field(default_factory=list)
    skipped: list[tuple[str, str]] = Field(default_factory=list)  # (name, reason)


class ImportStatus(_Loose):
    """A bulk lead import job (C9): `Queued | Importing | Complete | Failed`, with Marketo's row counts."""

    batch_id: int = Field(alias="batchId")
    status: str
    processed: int = Field(default=0, alias="numOfLeadsProcessed")
    failed: int = Field(default=0, alias="numOfRowsFailed")
    warnings: int = Field(default=0, alias="numOfRowsWithWarning")
    message: BoundedText | None = None

    @property
    def finished(self) -> bool:
        return self.status in ("Complete", "Failed")
