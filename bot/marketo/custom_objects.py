"""Marketo custom objects (Marketo's custom-object API): the schema a plan needs, made idempotently, and record upserts.

A mixin of `MarketoClient`: it uses the client's `_call` (auth, retries, typed errors) and `_sync`
(batches of ≤ 300 records under 1 MB, results in input order).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pydantic_core
from pydantic import BaseModel, Field

from bot.custom_object_models import CustomObjectPlan
from bot.marketo.errors import MarketoError
from bot.marketo.models import Envelope, RecordResult

SCHEMA = "/rest/v1/customobjects/schema"
NOT_FOUND = "1013"


class _Described(BaseModel):
    state: str = "draft"
    fields: list[dict[str, Any]] = Field(default_factory=list)


class CustomObjectsApi:
    _call: Callable[..., Envelope]
    _sync: Callable[[str, list[dict[str, Any]], dict[str, Any]], list[RecordResult]]

    def _schema(self, api_name: str) -> _Described | None:
        try:
            envelope = self._call("GET", f"{SCHEMA}/{api_name}/describe.json")
        except MarketoError as exc:
            if exc.code == NOT_FOUND:
                return None
            raise
        return _Described.model_validate(envelope.result[0])

    def ensure_custom_object(self, plan: CustomObjectPlan) -> list[str]:
        """Create the plan's type and its missing fields, then approve: safe to repeat after any failure.
        Returns the names of the fields added by this call."""
        described = self._schema(plan.api_name)
        if described is None:
            self._call("POST", f"{SCHEMA}.json", content=pydantic_core.to_json({
                "action": "createOnly", "apiName": plan.api_name, "displayName": plan.display_name,
                "pluralName": plan.plural_name, "showInLeadDetail": True,
                "description": f"Dynamics {plan.table}, synced by the bot"}))
            described = _Described()
        have = {str(f.get("name", "")).lower() for f in described.fields}
        wanted: list[dict[str, Any]] = [
            {"name": plan.dedupe_field, "displayName": f"Dynamics {plan.table} Id", "dataType": "string",
             "isDedupeField": True},
            {"name": plan.link.field_name, "displayName": f"Dynamics {plan.link.person.capitalize()}",
             "dataType": "link", "relatedTo": {"name": "lead", "field": plan.link.lead_field}},
            *({"name": f.name, "displayName": f.display_name, "dataType": f.data_type} for f in plan.fields),
        ]
        missing = [f for f in wanted if f["name"].lower() not in have]
        if missing:
            self._call("POST", f"{SCHEMA}/{plan.api_name}/addField.json",
                       content=pydantic_core.to_json({"input": missing}))
        if missing or described.state != "approved":
            self._call("POST", f"{SCHEMA}/{plan.api_name}/approve.json")
        return [f["name"] for f in missing]

    def custom_object_fields(self, api_name: str) -> frozenset[str]:
        """The fields a type has (draft included; none when there is no such type), without its id field
        marketoGUID: all count toward Marketo's limit of fields on a type, since a field cannot be deleted."""
        described = self._schema(api_name)
        names = {str(f.get("name", "")) for f in described.fields} if described else set()
        return frozenset(names - {"marketoGUID"})

    def custom_object_types(self) -> set[str]:
        """The API names of the instance's custom object types (they count toward Marketo's limit of 10)."""
        return {str(row.get("name")) for row in self._call("GET", "/rest/v1/customobjects.json").result}

    def sync_custom_objects(self, api_name: str, records: list[dict[str, Any]]) -> list[RecordResult]:
        """Upsert records deduped on the type's dedupe field; one result per record, in input order."""
        return self._sync(f"/rest/v1/customobjects/{api_name}.json", records,
                          {"action": "createOrUpdate", "dedupeBy": "dedupeFields"})
