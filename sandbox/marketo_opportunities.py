"""The Marketo emulator's opportunities and opportunity roles, as Marketo documents them.

Opportunities: describe, query by `externalOpportunityId` or `marketoGUID`, and upsert (≤ 300) with
`dedupeBy` `dedupeFields` (`externalOpportunityId`) or `idField` (`marketoGUID`, updateOnly); `name` must
not be null. Roles: describe, query, and upsert on the compound key `externalOpportunityId+leadId+role`,
where the opportunity and the lead must exist; only `isPrimary` and `externalCreatedDate` change on update;
delete (`roles/delete.json`, the same interface as the opportunities') by `dedupeFields` or `idField`.
Results carry `seq` and `marketoGUID`. The emulator's instance has no native CRM sync (with one, these
APIs are read-only: 1018).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from starlette.requests import Request

from sandbox.marketo import (
    LEAD_ACTIONS,
    MAX_BATCH,
    ApiFailure,
    FieldDef,
    RecordSkip,
    Table,
    _envelope,
    _f,
    filter_matches,
)

OPPORTUNITY_FIELDS: list[FieldDef] = [
    _f("externalOpportunityId", "External Opportunity Id"), _f("name", "Name"), _f("description", "Description"),
    _f("type", "Type"), _f("amount", "Amount", "currency"), _f("closeDate", "Close Date", "date"),
    _f("isClosed", "Is Closed", "boolean"), _f("isWon", "Is Won", "boolean"),
    _f("probability", "Probability", "integer"), _f("stage", "Stage"), _f("nextStep", "Next Step"),
    _f("leadSource", "Lead Source"), _f("expectedRevenue", "Expected Revenue", "currency"),
    _f("fiscalQuarter", "Fiscal Quarter", "integer"), _f("fiscalYear", "Fiscal Year", "integer"),
    _f("forecastCategoryName", "Forecast Category Name"), _f("lastActivityDate", "Last Activity Date", "date"),
    _f("externalCompanyId", "External Company Id"), _f("externalSalesPersonId", "External Sales Person Id"),
    _f("externalCreatedDate", "External Created Date", "datetime"),
]
ROLE_FIELDS: list[FieldDef] = [
    _f("externalOpportunityId", "External Opportunity Id"), _f("leadId", "Lead Id", "integer"),
    _f("role", "Role"), _f("isPrimary", "Is Primary", "boolean"),
    _f("externalCreatedDate", "External Created Date", "datetime"),
]
OPPORTUNITY_DEDUPE = ("externalOpportunityId",)
ROLE_DEDUPE = ("externalOpportunityId", "leadId", "role")
ROLE_UPDATEABLE = frozenset({"isPrimary", "externalCreatedDate"})
ID_FIELD = "marketoGUID"


class OpportunityObjects:
    """The two tables and their endpoints; `leads` is the emulator's lead table (a role's lead must exist).

    Handlers run under the emulator's lock, like its own."""

    def __init__(self, leads: Table, json_body: Callable[[Request, bytes], dict[str, Any]],
                 validated: Callable[[Any, dict[str, FieldDef], bool], dict[str, Any]]) -> None:
        self.opportunities, self.roles, self._leads = Table(), Table(), leads
        self._json_body, self._validated = json_body, validated
        self._fields = {f.name: f for f in OPPORTUNITY_FIELDS}
        self._role_fields = {f.name: f for f in ROLE_FIELDS}
        self.delete_refusal: RecordSkip | None = None  # a test's knob: every role delete is skipped with it

    # -- describe ------------------------------------------------------------------------------------
    @staticmethod
    def _description(name: str, fields: list[FieldDef], dedupe: tuple[str, ...], searchable: list[list[str]]
                     ) -> dict[str, Any]:
        return _envelope([{
            "name": name, "displayName": name.title(), "idField": ID_FIELD, "dedupeFields": list(dedupe),
            "searchableFields": searchable,
            "fields": [{"name": ID_FIELD, "displayName": "Marketo GUID", "dataType": "string", "length": 36,
                        "updateable": False}] + [f.describe2() for f in fields],
        }])

    def describe(self, request: Request, params: dict[str, str], body: bytes) -> dict[str, Any]:
        return self._description("opportunity", OPPORTUNITY_FIELDS, OPPORTUNITY_DEDUPE,
                                 [["externalOpportunityId"], [ID_FIELD]])

    def describe_roles(self, request: Request, params: dict[str, str], body: bytes) -> dict[str, Any]:
        return self._description("opportunityRole", ROLE_FIELDS, ROLE_DEDUPE,
                                 [list(ROLE_DEDUPE), [ID_FIELD], ["leadId"], ["externalOpportunityId"]])

    # -- opportunities -------------------------------------------------------------------------------
    def opportunities_endpoint(self, request: Request, params: dict[str, str], body: bytes) -> dict[str, Any]:
        if request.method == "GET" or params.get("_method") == "GET":
            return self._query(self.opportunities, self._fields, {"externalOpportunityId", ID_FIELD}, params)
        payload = self._json_body(request, body)
        action, key = self._action(payload, "externalOpportunityId")
        return self._results(payload, lambda rec: self._sync_opportunity(rec, action, key))

    def _sync_opportunity(self, rec: Any, action: str, key: str) -> tuple[str, str]:
        changes = self._validated({k: v for k, v in rec.items() if k != ID_FIELD} if isinstance(rec, dict) else rec,
                                  self._fields, False)
        row_id = self._match(self.opportunities, key, rec, action)
        if row_id is None and not changes.get("name"):
            raise RecordSkip("1003", "Field 'name' is required")
        if row_id is not None and "name" in changes and not changes["name"]:
            raise RecordSkip("1003", "Field 'name' cannot be null")
        return self._write(self.opportunities, row_id, changes)

    # -- roles ---------------------------------------------------------------------------------------
    def roles_endpoint(self, request: Request, params: dict[str, str], body: bytes) -> dict[str, Any]:
        if request.method == "GET" and "filterType" in params:
            return self._query(self.roles, self._role_fields, {ID_FIELD, "leadId", "externalOpportunityId"}, params)
        payload = self._json_body(request, body)
        if params.get("_method") == "GET":
            return self._compound_query(payload)
        action, key = self._action(payload, "dedupeFields")
        return self._results(payload, lambda rec: self._sync_role(rec, action, key))

    def delete_roles(self, request: Request, params: dict[str, str], body: bytes) -> dict[str, Any]:
        payload = self._json_body(request, body)
        delete_by = payload.get("deleteBy", "dedupeFields")
        if delete_by not in {"dedupeFields", "idField"}:
            raise ApiFailure("1003", "Invalid deleteBy")
        return self._results(payload, lambda rec: self._delete_role(rec, delete_by))

    def _delete_role(self, rec: Any, delete_by: str) -> tuple[str, str]:
        if self.delete_refusal is not None:
            raise self.delete_refusal
        if not isinstance(rec, dict):
            raise RecordSkip("1003", "Invalid input")
        row_id = self._match(self.roles, ID_FIELD, rec, "updateOnly") if delete_by == "idField" \
            else self._role_row(rec)
        if row_id is None:
            raise RecordSkip("1013", "Opportunity role not found")
        return "deleted", self.roles.delete(row_id)[ID_FIELD]

    def _role_row(self, rec: dict[str, Any]) -> int | None:
        if any(rec.get(name) in (None, "") for name in ROLE_DEDUPE):
            raise RecordSkip("1003", f"Fields {', '.join(ROLE_DEDUPE)} are required")
        return next((i for i in self.roles.find("externalOpportunityId", rec["externalOpportunityId"])
                     if str(self.roles.rows[i].get("leadId")) == str(rec["leadId"])
                     and self.roles.rows[i].get("role") == rec["role"]), None)

    def _sync_role(self, rec: Any, action: str, key: str) -> tuple[str, str]:
        changes = self._validated({k: v for k, v in rec.items() if k != ID_FIELD} if isinstance(rec, dict) else rec,
                                  self._role_fields, False)
        if key == ID_FIELD:
            row_id = self._match(self.roles, ID_FIELD, rec, action)
        else:
            row_id = self._role_row(changes)
            if row_id is None and action == "updateOnly":
                raise RecordSkip("1004", "Opportunity role not found")
            if row_id is not None and action == "createOnly":
                raise RecordSkip("1005", "Opportunity role already exists")
        if row_id is None:
            if not self.opportunities.find("externalOpportunityId", changes["externalOpportunityId"]):
                raise RecordSkip("1013", "Opportunity not found")
            if not self._leads.find("id", changes["leadId"]):
                raise RecordSkip("1013", "Lead not found")
        else:
            changes = {k: v for k, v in changes.items() if k in ROLE_UPDATEABLE}
        return self._write(self.roles, row_id, changes)

    def _compound_query(self, payload: dict[str, Any]) -> dict[str, Any]:
        if payload.get("filterType") != "dedupeFields":
            raise ApiFailure("1003", "Invalid filterType")
        items = payload.get("input")
        if not isinstance(items, list) or not items:
            raise ApiFailure("701", "input cannot be blank")
        found = []
        for seq, rec in enumerate(items):
            row_id = self._role_row(rec) if isinstance(rec, dict) else None
            if row_id is not None:
                found.append({"seq": seq, **self.roles.rows[row_id]})
        return _envelope([{k: v for k, v in row.items() if k != "id"} for row in found])

    # -- shared --------------------------------------------------------------------------------------
    @staticmethod
    def _action(payload: dict[str, Any], dedupe_key: str) -> tuple[str, str]:
        action = payload.get("action", "createOrUpdate")
        dedupe = payload.get("dedupeBy", "dedupeFields")
        if action not in LEAD_ACTIONS - {"createDuplicate"} or dedupe not in {"dedupeFields", "idField"}:
            raise ApiFailure("1003", "Invalid action or dedupeBy")
        if dedupe == "idField" and action != "updateOnly":
            raise ApiFailure("1003", "dedupeBy idField is only allowed with action updateOnly")
        return action, dedupe_key if dedupe == "dedupeFields" else ID_FIELD

    @staticmethod
    def _results(payload: dict[str, Any], write: Callable[[Any], tuple[str, str]]) -> dict[str, Any]:
        items = payload.get("input")
        if not isinstance(items, list) or not items:
            raise ApiFailure("701", "input cannot be blank")
        if len(items) > MAX_BATCH:
            raise ApiFailure("1003", f"Batch size {len(items)} exceeds {MAX_BATCH}")
        results: list[dict[str, Any]] = []
        for seq, rec in enumerate(items):
            try:
                status, guid = write(rec)
            except RecordSkip as skip:
                results.append({"seq": seq, "status": "skipped",
                                "reasons": [{"code": skip.code, "message": skip.message}]})
                continue
            results.append({"seq": seq, "status": status, ID_FIELD: guid})
        return _envelope(results)

    @staticmethod
    def _match(table: Table, key: str, rec: dict[str, Any], action: str) -> int | None:
        value = rec.get(key)
        if value in (None, ""):
            raise RecordSkip("1003", f"Value for dedupe field '{key}' is required")
        ids = table.find(key, value)
        if ids and action == "createOnly":
            raise RecordSkip("1005", "Record already exists")
        if not ids and action == "updateOnly":
            raise RecordSkip("1004", "Record not found")
        return ids[0] if ids else None

    @staticmethod
    def _write(table: Table, row_id: int | None, changes: dict[str, Any]) -> tuple[str, str]:
        if row_id is None:
            row_id = table.write(None, {**changes, ID_FIELD: str(uuid.uuid4())})
            return "created", table.rows[row_id][ID_FIELD]
        table.write(row_id, changes)
        return "updated", table.rows[row_id][ID_FIELD]

    @staticmethod
    def _query(table: Table, fields: dict[str, FieldDef], searchable: set[str], params: dict[str, str]
               ) -> dict[str, Any]:
        ids, wanted = filter_matches(table, fields, searchable, fields, params, ID_FIELD)
        return _envelope([{"seq": seq, ID_FIELD: table.rows[i][ID_FIELD],
                           **{n: table.rows[i].get(n) for n in wanted if n != ID_FIELD}}
                          for seq, i in enumerate(ids)])
