"""Pydantic models for Marketo's activity reads: lead changes, activities, activity types.

Who made a change is read from the activity's attributes, names matched case-insensitively:
`request id` and `modifying user` appear on API writes (lowercase, undocumented but recorded);
`Source`/`Reason`/`Source Type` = "Web service API" means *some* API client, not necessarily
this product. So `by_api_user` is true only when `modifying user` is the product's own API
user; a caller that also logs the `requestId` of its writes can match `request_id` too, and
otherwise compare the new values with what it wrote.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

API_SOURCE = "web service api"
NEW_LEAD = "New Lead"
CHANGE_DATA_VALUE = "Change Data Value"


class _Loose(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class ActivityAttribute(_Loose):
    name: str
    value: str | int | float | bool | None = None


class FieldChange(_Loose):
    """One changed field of a Change Data Value item; values come as strings, `old_value` is optional."""

    id: int | None = None
    name: str
    new_value: str | None = Field(default=None, alias="newValue")
    old_value: str | None = Field(default=None, alias="oldValue")


class Activity(_Loose):
    """An item of Get Lead Activities / Get Lead Changes / Get Deleted Leads. Key on `marketo_guid`:
    `id` may be absent and is not unique."""

    marketo_guid: str = Field(alias="marketoGUID")
    id: int | None = None
    lead_id: int = Field(alias="leadId")
    activity_date: datetime = Field(alias="activityDate")
    activity_type_id: int = Field(alias="activityTypeId")
    primary_attribute_value_id: int | None = Field(default=None, alias="primaryAttributeValueId")
    primary_attribute_value: str | None = Field(default=None, alias="primaryAttributeValue")
    attributes: list[ActivityAttribute] = Field(default_factory=list)

    def attribute(self, name: str) -> str | int | float | bool | None:
        """The value of the attribute named `name`, matched case-insensitively."""
        wanted = name.casefold()
        return next((a.value for a in self.attributes if a.name.casefold() == wanted), None)

    @property
    def request_id(self) -> str | None:
        value = self.attribute("request id")
        return None if value is None else str(value)

    @property
    def modifying_user(self) -> str | None:
        value = self.attribute("modifying user")
        return None if value is None else str(value)

    @property
    def via_api(self) -> bool:
        """Made through the REST API by some client (this product or another)."""
        return any(str(self.attribute(n) or "").casefold() == API_SOURCE
                   for n in ("Source", "Reason", "Source Type"))


class LeadChange(Activity):
    """A Get Lead Changes item: New Lead (`fields` empty) or Change Data Value of a requested field.
    `by_api_user` is set by `lead_changes_page` from the client's API user."""

    fields: list[FieldChange] = Field(default_factory=list)
    by_api_user: bool = False

    @property
    def new_values(self) -> dict[str, str | None]:
        return {f.name: f.new_value for f in self.fields}


class LeadChangesPage(BaseModel):
    """One page of lead changes. `next_token` resumes after this page, also when `more` is false."""

    changes: list[LeadChange]
    next_token: str
    more: bool


class ActivitiesPage(BaseModel):
    activities: list[Activity]
    next_token: str
    more: bool


class ActivityTypeAttribute(_Loose):
    name: str
    data_type: str = Field(default="string", alias="dataType")


class ActivityType(_Loose):
    """Ids vary by subscription: resolve types by name."""

    id: int
    name: str
    description: str = ""
    primary_attribute: ActivityTypeAttribute | None = Field(default=None, alias="primaryAttribute")
    attributes: list[ActivityTypeAttribute] = Field(default_factory=list)


def lead_changes_page(result: list[Any], next_token: str, more: bool, api_user: str | None) -> LeadChangesPage:
    changes = [LeadChange.model_validate(item) for item in result]
    for change in changes:
        modifier = change.modifying_user
        change.by_api_user = bool(api_user and modifier and modifier.casefold() == api_user.casefold())
    return LeadChangesPage(changes=changes, next_token=next_token, more=more)
