"""Marketo custom objects (Marketo's custom-object API): the schema API (draft -> approved) and record sync.

Limits enforced as the reference states: 10 types, 50 fields a type, 1-3 dedupe fields, at most 20 fields
added after approval; after approval the names and the link or dedupe fields cannot change. Marketo gives
no error codes for these, so refusals use 1003 (invalid) and 1013 (object not found) [?].
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

MAX_TYPES = 10
MAX_FIELDS = 50
MAX_DEDUPE_FIELDS = 3
MAX_FIELDS_AFTER_APPROVAL = 20
FIELD_TYPES = frozenset(
    {"boolean", "currency", "date", "datetime", "email", "float", "integer", "link", "percent", "phone",
     "string", "text", "url"}
)
TYPE_ACTIONS = frozenset({"createOnly", "updateOnly", "createOrUpdate"})
RECORD_ACTIONS = frozenset({"createOnly", "updateOnly", "createOrUpdate"})


class SchemaRefused(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class ObjectField:
    name: str
    display_name: str
    data_type: str
    dedupe: bool = False
    related_to: dict[str, str] | None = None

    def describe(self) -> dict[str, Any]:
        item: dict[str, Any] = {"name": self.name, "displayName": self.display_name, "dataType": self.data_type,
                                "updateable": not self.dedupe}
        if self.data_type in {"string", "email", "phone", "url", "link"}:
            item["length"] = 255
        return item


@dataclass
class ObjectVersion:
    display_name: str
    plural_name: str
    description: str = ""
    fields: dict[str, ObjectField] = field(default_factory=dict)


@dataclass
class ObjectType:
    api_name: str
    draft: ObjectVersion | None
    approved: ObjectVersion | None = None
    added_after_approval: int = 0
    records: dict[str, dict[str, Any]] = field(default_factory=dict)  # marketoGUID -> record
    by_dedupe: dict[tuple[Any, ...], str] = field(default_factory=dict)  # dedupe values -> marketoGUID

    def state(self) -> str:
        if self.approved is None:
            return "draft"
        return "approvedWithDraft" if self.draft is not None else "approved"

    def describe(self, version: ObjectVersion) -> dict[str, Any]:
        dedupe = [f.name for f in version.fields.values() if f.dedupe]
        return {"name": self.api_name, "displayName": version.display_name, "pluralName": version.plural_name,
                "description": version.description, "state": self.state(), "idField": "marketoGUID",
                "dedupeFields": dedupe, "searchableFields": [[n] for n in dedupe],
                "relationships": [{"field": f.name, "type": "child", "relatedTo": f.related_to}
                                  for f in version.fields.values() if f.related_to],
                "fields": [{"name": "marketoGUID", "displayName": "Marketo GUID", "dataType": "string",
                            "length": 36, "updateable": False},
                           *(f.describe() for f in version.fields.values())]}


def _name(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value or not value[0].isalpha() \
            or not all(c.isalnum() or c == "_" for c in value):
        raise SchemaRefused("1003", f"Invalid {what} '{value}'")
    return value


class CustomObjects:
    """State of the custom object types; the Marketo emulator calls these with its lock held.

    `lead_exists(field, value)` answers whether a lead holds `value` in `field` (a link field's target)."""

    def __init__(self, lead_exists: Callable[[str, Any], bool], entitled: bool = True) -> None:
        self._lead_exists = lead_exists
        self.entitled = entitled
        self.types: dict[str, ObjectType] = {}

    def _check_entitled(self) -> None:
        if not self.entitled:
            raise SchemaRefused("1026", "Custom objects are not enabled for this subscription")

    def _type(self, api_name: str) -> ObjectType:
        self._check_entitled()
        found = self.types.get(api_name)
        if found is None:
            raise SchemaRefused("1013", f"Object '{api_name}' not found")
        return found

    # -- schema ---------------------------------------------------------------------------------
    def upsert_type(self, payload: dict[str, Any]) -> dict[str, Any]:
        self._check_entitled()
        action = payload.get("action", "createOrUpdate")
        if action not in TYPE_ACTIONS:
            raise SchemaRefused("1003", f"Invalid action '{action}'")
        api_name = _name(payload.get("apiName"), "apiName")
        display = payload.get("displayName")
        if not isinstance(display, str) or not display.strip():
            raise SchemaRefused("1003", "displayName is required")
        existing = self.types.get(api_name)
        if existing is None and action == "updateOnly":
            raise SchemaRefused("1013", f"Object '{api_name}' not found")
        if existing is not None and action == "createOnly":
            raise SchemaRefused("1003", f"Object '{api_name}' already exists")
        plural = str(payload.get("pluralName") or f"{display}s")
        if existing is None:
            if len(self.types) >= MAX_TYPES:
                raise SchemaRefused("1003", f"At most {MAX_TYPES} custom object types")
            self.types[api_name] = ObjectType(api_name, ObjectVersion(display, plural,
                                                                      str(payload.get("description", ""))))
            return {"apiName": api_name, "status": "created", "state": "draft"}
        if existing.approved is not None and display != existing.approved.display_name:
            raise SchemaRefused("1003", "displayName cannot change after approval")
        base = existing.draft or existing.approved
        assert base is not None
        existing.draft = replace(base, display_name=display, plural_name=plural, fields=dict(base.fields))
        return {"apiName": api_name, "status": "updated", "state": existing.state()}

    def add_fields(self, api_name: str, items: list[Any]) -> list[dict[str, Any]]:
        kind = self._type(api_name)
        base = kind.draft or kind.approved
        assert base is not None
        draft = replace(base, fields=dict(base.fields))
        added = 0
        for item in items:
            new = self._field(item)
            if new.name in draft.fields:
                raise SchemaRefused("1003", f"Field '{new.name}' already exists")
            if kind.approved is not None and (new.dedupe or new.related_to):
                raise SchemaRefused("1003", "Link and dedupe fields cannot change after approval")
            draft.fields[new.name] = new
            added += 1
        if len(draft.fields) > MAX_FIELDS:
            raise SchemaRefused("1003", f"At most {MAX_FIELDS} fields per custom object")
        if sum(f.dedupe for f in draft.fields.values()) > MAX_DEDUPE_FIELDS:
            raise SchemaRefused("1003", f"At most {MAX_DEDUPE_FIELDS} dedupe fields")
        if kind.approved is not None and kind.added_after_approval + added > MAX_FIELDS_AFTER_APPROVAL:
            raise SchemaRefused("1003", f"At most {MAX_FIELDS_AFTER_APPROVAL} fields added after approval")
        kind.draft = draft
        return [{"name": _name(item.get("name"), "field name"), "status": "created"} for item in items]

    @staticmethod
    def _field(item: Any) -> ObjectField:
        if not isinstance(item, dict):
            raise SchemaRefused("1003", "Invalid field")
        name = _name(item.get("name"), "field name")
        data_type = item.get("dataType")
        if data_type not in FIELD_TYPES:
            raise SchemaRefused("1003", f"Invalid dataType '{data_type}' for field '{name}'")
        related = item.get("relatedTo")
        if data_type == "link":
            if not isinstance(related, dict) or related.get("name") != "lead" or not related.get("field"):
                raise SchemaRefused("1003", f"Link field '{name}' needs relatedTo {{name: lead, field}}")
        elif related is not None:
            raise SchemaRefused("1003", f"Only a link field takes relatedTo ('{name}')")
        dedupe = bool(item.get("isDedupeField"))
        if dedupe and data_type not in {"string", "integer", "email"}:
            raise SchemaRefused("1003", f"Dedupe field '{name}' must be string, integer or email")
        return ObjectField(name, str(item.get("displayName") or name), data_type, dedupe,
                           {"name": "lead", "field": str(related["field"])} if data_type == "link" else None)

    def approve(self, api_name: str) -> dict[str, Any]:
        kind = self._type(api_name)
        if kind.draft is None:
            raise SchemaRefused("1003", f"Object '{api_name}' has no draft to approve")
        dedupe = [f for f in kind.draft.fields.values() if f.dedupe]
        if not 1 <= len(dedupe) <= MAX_DEDUPE_FIELDS:
            raise SchemaRefused("1003", f"An object needs 1 to {MAX_DEDUPE_FIELDS} dedupe fields to be approved")
        if kind.approved is not None:
            kind.added_after_approval += len(set(kind.draft.fields) - set(kind.approved.fields))
        kind.approved, kind.draft = kind.draft, None
        return {"apiName": api_name, "status": "approved", "state": kind.state()}

    def describe_schema(self, api_name: str, state: str | None) -> dict[str, Any]:
        kind = self._type(api_name)
        version = kind.approved if state == "approved" else (kind.draft or kind.approved)
        if version is None:
            raise SchemaRefused("1013", f"Object '{api_name}' has no {state} version")
        return kind.describe(version)

    def list_types(self, names: list[str]) -> list[dict[str, Any]]:
        self._check_entitled()
        return [kind.describe(kind.approved) for kind in self.types.values()
                if kind.approved is not None and (not names or kind.api_name in names)]

    def describe(self, api_name: str) -> dict[str, Any]:
        kind = self._type(api_name)
        if kind.approved is None:
            raise SchemaRefused("1013", f"Object '{api_name}' is not approved")
        return kind.describe(kind.approved)

    # -- records --------------------------------------------------------------------------------
    def sync(self, api_name: str, payload: dict[str, Any], items: list[Any]) -> list[dict[str, Any]]:
        kind = self._type(api_name)
        if kind.approved is None:
            raise SchemaRefused("1013", f"Object '{api_name}' is not approved")
        action = payload.get("action", "createOrUpdate")
        dedupe_by = payload.get("dedupeBy", "dedupeFields")
        if action not in RECORD_ACTIONS or dedupe_by not in {"dedupeFields", "idField"}:
            raise SchemaRefused("1003", "Invalid action or dedupeBy")
        if dedupe_by == "idField" and action != "updateOnly":
            raise SchemaRefused("1003", "dedupeBy idField is only allowed with action updateOnly")
        return [{"seq": seq, **self._sync_one(kind, kind.approved, rec, action, dedupe_by)}
                for seq, rec in enumerate(items)]

    def _sync_one(self, kind: ObjectType, version: ObjectVersion, rec: Any, action: str,
                  dedupe_by: str) -> dict[str, Any]:
        def skipped(code: str, message: str) -> dict[str, Any]:
            return {"status": "skipped", "reasons": [{"code": code, "message": message}]}

        if not isinstance(rec, dict):
            return skipped("1003", "Invalid record")
        for name, value in rec.items():
            fdef = version.fields.get(name)
            if name != "marketoGUID" and fdef is None:
                return skipped("1006", f"Field '{name}' not found")
            if fdef is not None and fdef.related_to and value not in (None, "") \
                    and not self._lead_exists(fdef.related_to["field"], value):
                return skipped("1003", f"No lead with {fdef.related_to['field']} '{value}' for link field '{name}'")
        records = kind.records
        keys = [f.name for f in version.fields.values() if f.dedupe]
        if dedupe_by == "idField":
            guid = rec.get("marketoGUID")
            if guid not in records:
                return skipped("1013", "Record not found")
        else:
            if any(rec.get(k) in (None, "") for k in keys):
                return skipped("1003", f"Value for dedupe fields {keys} is required")
            guid = kind.by_dedupe.get(tuple(rec[k] for k in keys))
            if guid is not None and action == "createOnly":
                return skipped("1005", "Record already exists")
            if guid is None and action == "updateOnly":
                return skipped("1013", "Record not found")
        values = {k: v for k, v in rec.items() if k != "marketoGUID"}
        if guid is None:
            guid = str(uuid.uuid4())
            records[guid] = {"marketoGUID": guid, **values}
            kind.by_dedupe[tuple(values[k] for k in keys)] = guid  # dedupe fields never change once approved
            return {"status": "created", "marketoGUID": guid}
        records[guid].update(values)
        return {"status": "updated", "marketoGUID": guid}

    def query(self, api_name: str, filter_type: str, values: list[str], fields: list[str]) -> list[dict[str, Any]]:
        kind = self._type(api_name)
        if kind.approved is None:
            raise SchemaRefused("1013", f"Object '{api_name}' is not approved")
        dedupe = [f.name for f in kind.approved.fields.values() if f.dedupe]
        key = {"idField": "marketoGUID", "dedupeFields": dedupe[0] if len(dedupe) == 1 else ""}.get(filter_type,
                                                                                                    filter_type)
        if key != "marketoGUID" and key not in dedupe:
            raise SchemaRefused("1003", f"Invalid filterType '{filter_type}'")
        wanted = fields or ["marketoGUID", *dedupe]
        return [{n: row.get(n) for n in wanted} for row in kind.records.values() if str(row.get(key)) in values]

    def records(self, api_name: str) -> list[dict[str, Any]]:
        return [dict(r) for r in self._type(api_name).records.values()]
