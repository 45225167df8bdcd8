"""What Dataverse posts to a registered webhook, and the check of its key.

The body is a trimmed `RemoteExecutionContext`: `InputParameters` and the Target's `Attributes`
are `[{key, value}]` lists, lookups are `EntityReference`s and dates look like `/Date(ms)/`. An
Update's Target holds only the changed columns (plus system ones), and a body over 256 KB has no
`InputParameters` at all: re-read the row when in doubt. Delivery is lossy; change tracking stays
the reconciler.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

WEBHOOK_KEY_HEADER = "x-api-key"


class _Model(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="ignore")


class WebhookRegistration(_Model):
    """What `register_webhook` made: the service endpoint and its steps, for `unregister_webhook`."""

    endpoint_id: str
    step_ids: list[str] = Field(default_factory=list)


class _KeyValue(_Model):
    key: str
    value: Any = None


class _Extension(_Model):
    id: str = Field(alias="Id")


def _plain(value: Any) -> Any:
    """An `EntityReference` as its id; anything else as sent."""
    if isinstance(value, dict) and "Id" in value and "LogicalName" in value:
        return value["Id"]
    return value


class DataverseNotification(_Model):
    """The body of one webhook delivery: which row of which table changed, how, and by whom."""

    message_name: str = Field(alias="MessageName")
    primary_entity_name: str = Field(alias="PrimaryEntityName")
    primary_entity_id: str = Field(alias="PrimaryEntityId")
    initiating_user_id: str = Field(alias="InitiatingUserId")
    user_id: str = Field(alias="UserId")
    correlation_id: str | None = Field(None, alias="CorrelationId")
    input_parameters: list[_KeyValue] = Field(default_factory=list, alias="InputParameters")
    owning_extension: _Extension | None = Field(None, alias="OwningExtension")

    @property
    def target_attributes(self) -> dict[str, Any]:
        """The Target's columns by logical name (lookups as their ids); empty for a Delete or when
        Dataverse dropped the parameters of a large body."""
        target = next((p.value for p in self.input_parameters if p.key == "Target"), None)
        if not isinstance(target, dict):
            return {}
        return {str(item.get("key")): _plain(item.get("value")) for item in target.get("Attributes") or []
                if isinstance(item, dict)}

    def made_by(self, user_id: str) -> bool:
        """Did `user_id` (our sync user's systemuserid) make this change? Such changes must not echo."""
        return self.initiating_user_id.lower() == user_id.lower()


def key_matches(headers: Mapping[str, str], expected: str, header: str = WEBHOOK_KEY_HEADER) -> bool:
    """Does the delivery carry the key the endpoint was registered with? Constant-time compare."""
    received = headers.get(header) or headers.get(header.lower()) or ""
    return bool(expected) and hmac.compare_digest(received.encode(), expected.encode())
