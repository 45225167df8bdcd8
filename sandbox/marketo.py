"""A Marketo REST emulator (reference section C), served over loopback by `ServerThread`.

It enforces what the real service enforces: expiring identity tokens (601/602), the
Authorization header only, the sliding call window (606), the concurrency cap (615), the
daily quota (607), 300 records and 1 MB per call (413), per-record skips with reasons,
dedupe on the lookup field, and the field schema rules. Companies and sales persons (reference B4, B5):
a lead linked to a company (`externalCompanyId`) reads with the company's fields, and a lead or company
naming an unknown `externalSalesPersonId` is skipped (718). Everything answers in HTTP 200
envelopes like the real service, except identity (401) and 413/414 at the HTTP layer.

`time_scale` multiplies `window_seconds` and `token_lifetime`, so tests can run a 20 s
window in 2 s. Inspection methods are thread-safe and meant for tests and benchmarks.

    emulator = MarketoEmulator(client_id="id", client_secret="secret").start()
    ... MarketoClient(emulator.url, "id", "secret") ...
    emulator.stop()
"""

from __future__ import annotations

import asyncio
import base64
import re
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import parse_qs

import pydantic_core
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from sandbox.marketo_activities import (
    ACTIVITY_TYPES,
    CALL_WEBHOOK,
    DELETE_LEAD,
    LEAD_CHANGE_TYPES,
    MERGE_LEADS,
    Activity,
    ActivityLog,
    BadToken,
    Origin,
)
from sandbox.marketo_bulk import MAX_FILE_BYTES, BulkImports, ImportRefused, multipart_fields
from sandbox.marketo_custom_objects import CustomObjects, SchemaRefused
from sandbox.marketo_webhooks import Delivery, FieldInfo, TriggerCampaign, WebhookSender
from sandbox.server import Emulator, ServerThread

MAX_BODY_BYTES = 1_000_000
MAX_URI_BYTES = 8 * 1024
MAX_BATCH = 300
MAX_FIELDS_PER_CREATE = 100
MAX_FILTER_MATCHES = 1000
INT_RANGE = (-(2**31), 2**31 - 1)  # Marketo's integer range is not documented [?]; 32-bit is assumed
CREATABLE_TYPES = frozenset(
    {"boolean", "currency", "date", "datetime", "email", "float", "integer", "percent", "phone", "score",
     "string", "url"}
)
LOOKUP_TYPES = frozenset({"string", "email", "integer"})
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
FIELD_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
DISPLAY_NAME_RE = re.compile(r"^[A-Za-z0-9 _-]+$")
LEAD_ACTIONS = frozenset({"createOnly", "updateOnly", "createOrUpdate", "createDuplicate"})
MAX_LEAD_IDS = 30  # leadIds on activity reads
MAX_ACTIVITY_TYPE_IDS = 10
MAX_MERGE_LOSERS = 25


@dataclass
class FieldDef:
    name: str
    display_name: str
    data_type: str
    updateable: bool = True
    custom: bool = False
    description: str = ""
    hidden: bool = False

    @property
    def length(self) -> int | None:
        return 255 if self.data_type in {"string", "email", "phone", "url"} else None

    def describe2(self) -> dict[str, Any]:
        item: dict[str, Any] = {"name": self.name, "displayName": self.display_name, "dataType": self.data_type}
        if self.length:
            item["length"] = self.length
        item.update(updateable=self.updateable, crmManaged=False)
        return item

    def schema(self) -> dict[str, Any]:
        item: dict[str, Any] = {"displayName": self.display_name, "name": self.name,
                                "description": self.description, "dataType": self.data_type}
        if self.length:
            item["length"] = self.length
        item.update(isHidden=self.hidden, isHtmlEncodingInEmail=True, isSensitive=False,
                    isCustom=self.custom, isApiCreated=self.custom)
        return item


def _f(name: str, display: str, data_type: str = "string", updateable: bool = True) -> FieldDef:
    return FieldDef(name, display, data_type, updateable)


COMPANY_FIELDS: list[FieldDef] = [
    _f("externalCompanyId", "External Company Id"), _f("company", "Company Name"),
    _f("website", "Website", "url"), _f("mainPhone", "Main Phone", "phone"),
    _f("billingStreet", "Billing Address", "text"), _f("billingCity", "Billing City"),
    _f("billingState", "Billing State"), _f("billingPostalCode", "Billing Postal Code"),
    _f("billingCountry", "Billing Country"), _f("annualRevenue", "Annual Revenue", "currency"),
    _f("numberOfEmployees", "Num Employees", "integer"), _f("industry", "Industry"),
    _f("sicCode", "SIC Code"), _f("site", "Site"), _f("externalSalesPersonId", "External Sales Person Id"),
]
# Fields of the company object that also appear on a lead; Sync Leads may not change them when the
# lead is linked to a company (1021).
COMPANY_FIELDS_ON_LEAD = frozenset(f.name for f in COMPANY_FIELDS) - {"externalCompanyId", "externalSalesPersonId"}

LEAD_FIELDS: list[FieldDef] = [
    _f("id", "Id", "integer", updateable=False), _f("email", "Email Address", "email"),
    _f("firstName", "First Name"), _f("middleName", "Middle Name"), _f("lastName", "Last Name"),
    _f("salutation", "Salutation"), _f("title", "Job Title"), _f("department", "Department"),
    _f("phone", "Phone Number", "phone"), _f("mobilePhone", "Mobile Phone Number", "phone"),
    _f("fax", "Fax Number", "phone"), _f("address", "Address", "text"), _f("city", "City"),
    _f("state", "State"), _f("postalCode", "Postal Code"), _f("country", "Country"),
    _f("leadSource", "Lead Source"), _f("leadStatus", "Lead Status"), _f("rating", "Lead Rating"),
    _f("leadScore", "Lead Score", "score"), _f("dateOfBirth", "Date of Birth", "date"),
    _f("unsubscribed", "Unsubscribed", "boolean"), _f("unsubscribedReason", "Unsubscribed Reason", "text"),
    _f("doNotCall", "Do Not Call", "boolean"), _f("doNotCallReason", "Do Not Call Reason"),
    _f("emailInvalid", "Email Invalid", "boolean"), _f("marketingSuspended", "Marketing Suspended", "boolean"),
    _f("cookies", "Cookies"), _f("leadPerson", "Lead Person", "integer", updateable=False),
    _f("createdAt", "Created At", "datetime", updateable=False),
    _f("updatedAt", "Updated At", "datetime", updateable=False),
    *(replace(c) for c in COMPANY_FIELDS),
]
STANDARD_SEARCHABLE = ("email", "id", "cookies")
COMPANY_SEARCHABLE = ("externalCompanyId", "id", "company")
# Sales persons (reference sync-more B4): deduped on externalSalesPersonId; a lead, company or opportunity
# naming one that does not exist is skipped with 718.
SALES_PERSON_FIELDS: list[FieldDef] = [
    _f("externalSalesPersonId", "External Sales Person Id"), _f("email", "Email", "email"),
    _f("firstName", "First Name"), _f("lastName", "Last Name"), _f("jobTitle", "Job Title"),
    _f("phone", "Phone", "phone"), _f("mobilePhone", "Mobile Phone", "phone"), _f("fax", "Fax", "phone"),
    _f("facebook", "Facebook", "url"), _f("linkedIn", "LinkedIn", "url"), _f("twitter", "Twitter"),
    _f("createdAt", "Created At", "datetime", updateable=False),
    _f("updatedAt", "Updated At", "datetime", updateable=False),
]
SALES_PERSON_SEARCHABLE = ("externalSalesPersonId", "id", "email")
DEFAULT_LEAD_FIELDS = ("email", "firstName", "lastName", "updatedAt", "createdAt")


class ApiFailure(Exception):
    """A request-level `success:false` answer."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class RecordSkip(Exception):
    """A record-level skip with one reason."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class CallRecord:
    method: str
    path: str
    at: float  # time.monotonic() on arrival
    admitted: bool  # passed auth and every limit, so it counts against the window and quota
    code: str | None = None  # error code or HTTP status when the call failed at request level
    batch_size: int = 0
    body_bytes: int = 0


def _norm(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


def _is_number(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int | float):
        return True
    if isinstance(value, str):
        try:
            float(value)
        except ValueError:
            return False
        return True
    return False


def _is_int(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, str) and re.fullmatch(r"-?\d+", value):
        value = int(value)
    return isinstance(value, int) and INT_RANGE[0] <= value <= INT_RANGE[1]


def _is_date(value: Any) -> bool:
    try:
        date.fromisoformat(value)
    except (TypeError, ValueError):
        return False
    return bool(re.fullmatch(r"\d{4}-\d{2}-\d{2}", value))


def _is_datetime(value: Any) -> bool:
    try:
        datetime.fromisoformat(value)
    except (TypeError, ValueError):
        return False
    return True


def _is_bool(value: Any) -> bool:
    return isinstance(value, bool) or value in (0, 1) or (
        isinstance(value, str) and value.lower() in {"true", "false", "0", "1"})


def _typed(fdef: FieldDef, text: str) -> Any:
    """A CSV cell as the value Sync Leads would have been sent: numbers and booleans by the field's type."""
    try:
        if fdef.data_type in {"integer", "score"} and re.fullmatch(r"-?\d+", text):
            return int(text)
        if fdef.data_type in {"float", "currency", "percent"}:
            return float(text)
    except ValueError:
        return text
    if fdef.data_type == "boolean" and text.lower() in {"true", "false", "1", "0"}:
        return text.lower() in {"true", "1"}
    return text


def _is_string(limit: int) -> Callable[[Any], bool]:
    """At most `limit` bytes of UTF-8 (a string of at most limit/4 characters cannot exceed it)."""
    def check(value: Any) -> bool:
        if isinstance(value, str):
            return len(value) * 4 <= limit or len(value.encode()) <= limit
        return isinstance(value, int | float) and not isinstance(value, bool) and len(str(value).encode()) <= limit

    return check


_IS_STRING = _is_string(255)
VALIDATORS: dict[str, Callable[[Any], bool]] = {
    "string": _IS_STRING, "phone": _IS_STRING, "url": _IS_STRING, "reference": _IS_STRING,
    "text": _is_string(30_000), "integer": _is_int, "score": _is_int, "float": _is_number,
    "currency": _is_number, "percent": _is_number, "boolean": _is_bool, "date": _is_date,
    "datetime": _is_datetime,
}


def check_value(fdef: FieldDef, value: Any) -> None:
    """Raise RecordSkip when `value` does not fit the field (null always fits: it clears)."""
    if value is None:
        return
    if fdef.data_type == "email":
        if not isinstance(value, str) or not value.isascii() or not EMAIL_RE.match(value) or len(value) > 255:
            raise RecordSkip("1003", f"Invalid email address '{value}' for field '{fdef.name}'")
        return
    if not VALIDATORS.get(fdef.data_type, _IS_STRING)(value):
        raise RecordSkip("1001", f"Invalid value '{str(value)[:50]}' for field '{fdef.name}' "
                                 f"of type {fdef.data_type}")


class Table:
    """Records by id with lazily built, maintained indexes on (normalised) field values."""

    def __init__(self) -> None:
        self.rows: dict[int, dict[str, Any]] = {}
        self._next_id = 1
        self._indexes: dict[str, dict[Any, list[int]]] = {}
        self._stamp = (-1, "")

    def _now(self) -> str:
        """Now in UTC to the second, as `...Z`; formatted once per second, not once per written row."""
        second = int(time.time())
        if second != self._stamp[0]:
            text = datetime.fromtimestamp(second, UTC).isoformat().replace("+00:00", "Z")
            self._stamp = (second, text)
        return self._stamp[1]

    def _index(self, name: str) -> dict[Any, list[int]]:
        index = self._indexes.get(name)
        if index is None:
            index = {}
            for row_id, row in self.rows.items():
                if row.get(name) is not None:
                    index.setdefault(_norm(row[name]), []).append(row_id)
            self._indexes[name] = index
        return index

    def delete(self, row_id: int) -> dict[str, Any]:
        row = self.rows.pop(row_id)
        for name, index in self._indexes.items():
            ids = index.get(_norm(row.get(name)), [])
            if row_id in ids:
                ids.remove(row_id)
        return row

    def find(self, name: str, value: Any) -> list[int]:
        if name == "id":
            try:
                row_id = int(value)
            except (TypeError, ValueError):
                return []
            return [row_id] if row_id in self.rows else []
        return list(self._index(name).get(_norm(value), ()))

    def write(self, row_id: int | None, changes: dict[str, Any]) -> int:
        """Insert (row_id None) or update; keeps every built index current."""
        stamp = self._now()
        if row_id is None:
            row_id = self._next_id
            self._next_id += 1
            row: dict[str, Any] = {"id": row_id, "createdAt": stamp}
            self.rows[row_id] = row
        else:
            row = self.rows[row_id]
        for name, index in self._indexes.items():
            if name in changes and row.get(name) is not None:
                ids = index.get(_norm(row[name]), [])
                if row_id in ids:
                    ids.remove(row_id)
        row.update(changes)
        row["updatedAt"] = stamp
        for name, index in self._indexes.items():
            if name in changes and row.get(name) is not None:
                index.setdefault(_norm(row[name]), []).append(row_id)
        return row_id


@dataclass
class _Fault:
    code: str
    path: str | None


@dataclass
class _State:
    calls: list[CallRecord] = field(default_factory=list)
    max_concurrent: int = 0
    max_batch: int = 0
    max_body: int = 0


def _form(body: bytes) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(body.decode(errors="replace")).items()}


def _page_token(offset: int) -> str:
    return base64.urlsafe_b64encode(f"o:{offset}".encode()).decode()


def _page_offset(token: str | None) -> int:
    if not token:
        return 0
    try:
        return int(base64.urlsafe_b64decode(token.encode()).decode().removeprefix("o:"))
    except ValueError as exc:
        raise ApiFailure("1003", "Invalid nextPageToken") from exc


def _batch_size(params: dict[str, str], default: int = MAX_BATCH) -> int:
    try:
        size = int(params.get("batchSize") or default)
    except ValueError as exc:
        raise ApiFailure("1003", "Invalid batchSize") from exc
    return max(1, min(size, MAX_BATCH))


def filter_matches(table: Table, fields: dict[str, FieldDef], searchable: Iterable[str],
                   default_fields: Iterable[str], params: dict[str, str], id_field: str) -> tuple[list[int], list[str]]:
    """A query by `filterType` and `filterValues` (leads, companies, sales persons, opportunities, roles) checked
    as Marketo checks it: the matching rows' ids in order and the fields asked for (else `default_fields`)."""
    filter_type = params.get("filterType", "")
    if filter_type not in searchable:
        raise ApiFailure("1003", f"Invalid filterType '{filter_type}'")
    values = [v for v in params.get("filterValues", "").split(",") if v]
    if not values:
        raise ApiFailure("701", "filterValues cannot be blank")
    if len(values) > MAX_BATCH:
        raise ApiFailure("1003", f"filterValues exceeds {MAX_BATCH}")
    wanted = [n for n in params.get("fields", "").split(",") if n] or list(default_fields)
    unknown = [n for n in wanted if n != id_field and n not in fields]
    if unknown:
        raise ApiFailure("1006", f"Field '{unknown[0]}' not found")
    return sorted(set(i for value in values for i in table.find(filter_type, value))), wanted


def _envelope(result: list[Any] | None = None, **extra: Any) -> dict[str, Any]:
    return {"requestId": f"{uuid.uuid4().hex[:4]}#{uuid.uuid4().hex[:11]}", "success": True,
            "result": result or [], **extra}


def _new_request_id() -> str:
    return f"{uuid.uuid4().hex[:4]}#{uuid.uuid4().hex[:11]}"


def _failure(code: str, message: str) -> dict[str, Any]:
    return {"requestId": f"{uuid.uuid4().hex[:4]}#{uuid.uuid4().hex[:11]}", "success": False,
            "errors": [{"code": code, "message": message}]}


class MarketoEmulator(Emulator):
    def __init__(
        self,
        client_id: str = "emulator-client",
        client_secret: str = "emulator-secret",
        token_lifetime: float = 3600,
        calls_per_window: int = 100,
        window_seconds: float = 20,
        max_concurrency: int = 10,
        daily_quota: int = 50_000,
        latency: float = 0.0,
        time_scale: float = 1.0,
        api_user: str = "apiuser@emulator.local",
        activity_scan_block: int = 1000,
        webhook_timeout: float = 30.0,
        import_rate: float = 10_000.0,
    ) -> None:
        """`api_user` is the identity `scope` and the `modifying user` of API writes;
        `activity_scan_block` caps the activities one read scans (pages may come back short);
        `import_rate`: rows per second each running bulk import job takes in."""
        self.client_id = client_id
        self._client_secret = client_secret
        self.token_lifetime = token_lifetime * time_scale
        self.calls_per_window = calls_per_window
        self.window_seconds = window_seconds * time_scale
        self.max_concurrency = max_concurrency
        self.daily_quota = daily_quota
        self.latency = latency
        self._lock = threading.RLock()
        self._tokens: dict[str, float] = {}
        self._current_token: str | None = None
        self._window: deque[float] = deque()
        self._in_flight = 0
        self._quota_used = 0
        self._faults: deque[_Fault] = deque()
        self._refused_fields: dict[str, str] = {}
        self._fields_asked: list[str] = []
        self._state = _State()
        self._lead_fields: dict[str, FieldDef] = {f.name: replace(f) for f in LEAD_FIELDS}
        self._company_fields: dict[str, FieldDef] = {f.name: replace(f) for f in COMPANY_FIELDS}
        self._leads = Table()
        self._companies = Table()
        self._sales_person_fields: dict[str, FieldDef] = {f.name: replace(f) for f in SALES_PERSON_FIELDS}
        self._sales_persons = Table()
        from sandbox.marketo_opportunities import OpportunityObjects  # it builds on this module's tables

        self._opportunities = OpportunityObjects(self._leads, self._json_body, self._validated)
        self._server: ServerThread | None = None
        self.api_user = api_user
        self._activities = ActivityLog(scan_block=activity_scan_block)
        self._request_id = ""
        self._campaigns: list[TriggerCampaign] = []
        self._deliveries: list[Delivery] = []
        self._webhooks = WebhookSender(self._delivered, timeout=webhook_timeout)
        self.bulk = BulkImports(self._lock, self._import_row, import_rate)
        self.custom_objects = CustomObjects(lambda name, value: bool(self._leads.find(name, value)))
        self.app = Starlette(routes=self._routes())

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self) -> MarketoEmulator:
        self._server = ServerThread(self.app).start()
        self.bulk.start()
        return self

    def stop(self) -> None:
        self.bulk.stop()
        self._webhooks.stop()
        if self._server:
            self._server.stop()

    @property
    def url(self) -> str:
        return self.server.url

    # -- knobs ----------------------------------------------------------------------------------
    def fail_next(self, n: int, code: str | int, path: str | None = None) -> None:
        """The next `n` API calls (to `path`, if given) fail: codes below 600 are HTTP statuses,
        others Marketo error codes in a `success:false` envelope."""
        with self._lock:
            self._faults.extend(_Fault(str(code), path) for _ in range(n))

    def fail_next_import(self, message: str = "Import failed: system error") -> None:
        """The next bulk import job submitted ends `Failed` with `message` and imports nothing."""
        with self._lock:
            self.bulk.fail_next(message)

    def lock_field(self, name: str, locked: bool = True) -> None:
        """Make a lead field read-only (every record writing it is skipped with 1003), or writable again."""
        with self._lock:
            self._lead_fields[name].updateable = not locked

    def refuse_field(self, name: str, message: str | None = None) -> None:
        """Creating the lead field `name` is skipped with code 1003 and `message` (None: allowed again),
        as when a subscription's policy or a reserved name refuses it."""
        with self._lock:
            if message is None:
                self._refused_fields.pop(name.lower(), None)
            else:
                self._refused_fields[name.lower()] = message

    def refuse_role_deletes(self, code: str | None, message: str = "Opportunity role cannot be deleted") -> None:
        """Every opportunity role delete is skipped with `code` and `message` (None: allowed again)."""
        with self._lock:
            self._opportunities.delete_refusal = RecordSkip(code, message) if code is not None else None

    def expire_tokens(self) -> None:
        """Make every issued token expired now (the next call gets 602)."""
        with self._lock:
            now = time.monotonic()
            self._tokens = {token: min(expiry, now) for token, expiry in self._tokens.items()}

    def reset_counters(self) -> None:
        with self._lock:
            self._state = _State()

    def reset_quota(self) -> None:
        with self._lock:
            self._quota_used = 0

    # -- inspection -----------------------------------------------------------------------------
    def leads(self) -> list[dict[str, Any]]:
        """Every lead as a read shows it: a lead linked to a company shows the company's fields."""
        with self._lock:
            return [self._lead_view(row) for row in self._leads.rows.values()]

    def lead_count(self) -> int:
        with self._lock:
            return len(self._leads.rows)

    def lead_by(self, name: str, value: Any) -> dict[str, Any] | None:
        with self._lock:
            ids = self._leads.find(name, value)
            return self._lead_view(self._leads.rows[ids[0]]) if ids else None

    def companies(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(row) for row in self._companies.rows.values()]

    def sales_persons(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(row) for row in self._sales_persons.rows.values()]
    def opportunities(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(row) for row in self._opportunities.opportunities.rows.values()]

    def opportunity_roles(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(row) for row in self._opportunities.roles.rows.values()]

    def fields(self) -> list[dict[str, Any]]:
        with self._lock:
            return [f.schema() for f in self._lead_fields.values()]

    def fields_asked(self) -> list[str]:
        """The name of every lead field a create request asked for, in order (refused ones too)."""
        with self._lock:
            return list(self._fields_asked)

    def calls(self, path: str | None = None) -> list[CallRecord]:
        with self._lock:
            return [c for c in self._state.calls if path is None or c.path == path]

    @property
    def max_concurrent_seen(self) -> int:
        with self._lock:
            return self._state.max_concurrent

    @property
    def max_batch_size_seen(self) -> int:
        with self._lock:
            return self._state.max_batch

    @property
    def max_body_bytes_seen(self) -> int:
        with self._lock:
            return self._state.max_body

    @property
    def tokens_issued(self) -> int:
        with self._lock:
            return len(self._tokens)

    @property
    def quota_used(self) -> int:
        with self._lock:
            return self._quota_used

    @property
    def max_calls_in_any_window(self) -> int:
        """The most admitted calls that fell in any (t - window, t], from the call timestamps."""
        times = sorted(c.at for c in self.calls() if c.admitted)
        best, start = 0, 0
        for end, at in enumerate(times):
            while times[start] <= at - self.window_seconds:
                start += 1
            best = max(best, end - start + 1)
        return best

    # -- HTTP -----------------------------------------------------------------------------------
    def _routes(self) -> list[Route]:
        api = self._api
        return [
            Route("/identity/oauth/token", self._identity, methods=["GET", "POST"]),
            Route("/rest/v1/leads/describe.json", api(self._describe), methods=["GET"]),
            Route("/rest/v1/leads/describe2.json", api(self._describe2), methods=["GET"]),
            Route("/rest/v1/leads/schema/fields.json", api(self._schema_fields), methods=["GET", "POST"]),
            Route("/rest/v1/leads/schema/fields/{name}.json", api(self._schema_field), methods=["GET"]),
            Route("/rest/v1/leads.json", api(self._leads_endpoint), methods=["GET", "POST"]),
            Route("/rest/v1/companies.json", api(self._companies_endpoint), methods=["GET", "POST"]),
            Route("/rest/v1/salespersons.json", api(self._sales_persons_endpoint), methods=["GET", "POST"]),
            Route("/rest/v1/salespersons/describe.json", api(self._describe_sales_persons), methods=["GET"]),
            Route("/rest/v1/opportunities.json", api(self._opportunities.opportunities_endpoint),
                  methods=["GET", "POST"]),
            Route("/rest/v1/opportunities/describe.json", api(self._opportunities.describe), methods=["GET"]),
            Route("/rest/v1/opportunities/roles.json", api(self._opportunities.roles_endpoint),
                  methods=["GET", "POST"]),
            Route("/rest/v1/opportunities/roles/describe.json", api(self._opportunities.describe_roles),
                  methods=["GET"]),
            Route("/rest/v1/opportunities/roles/delete.json", api(self._opportunities.delete_roles), methods=["POST"]),
            Route("/rest/v1/leads/{id:int}/merge.json", api(self._merge), methods=["POST"]),
            Route("/rest/v1/activities/pagingtoken.json", api(self._paging_token), methods=["GET"]),
            Route("/rest/v1/activities/leadchanges.json", api(self._lead_changes), methods=["GET"]),
            Route("/rest/v1/activities/deletedleads.json", api(self._deleted_leads), methods=["GET"]),
            Route("/rest/v1/activities/types.json", api(self._activity_types), methods=["GET"]),
            Route("/rest/v1/activities.json", api(self._lead_activities), methods=["GET"]),
            Route("/bulk/v1/leads.json", api(self._bulk_import, max_body=MAX_FILE_BYTES + 65_536), methods=["POST"]),
            Route("/bulk/v1/leads/batch/{id:int}.json", api(self._bulk_status), methods=["GET"]),
            Route("/bulk/v1/leads/batch/{id:int}/{which:str}.json", api(self._bulk_file), methods=["GET"]),
            Route("/rest/v1/customobjects.json", api(self._custom_object_types), methods=["GET"]),
            Route("/rest/v1/customobjects/schema.json", api(self._custom_object_schema), methods=["POST"]),
            Route("/rest/v1/customobjects/schema/{name}/{op}.json", api(self._custom_object_schema),
                  methods=["GET", "POST"]),
            Route("/rest/v1/customobjects/{name}/describe.json", api(self._custom_object_records), methods=["GET"]),
            Route("/rest/v1/customobjects/{name}.json", api(self._custom_object_records), methods=["GET", "POST"]),
            Route("/{path:path}", api(self._not_found), methods=["GET", "POST", "PUT", "DELETE", "PATCH"]),
        ]

    async def _identity(self, request: Request) -> Response:
        params = {**request.query_params, **_form(await request.body())}
        if params.get("grant_type") != "client_credentials":
            return JSONResponse({"error": "unsupported_grant_type",
                                 "error_description": "Unsupported grant type"}, status_code=400)
        if params.get("client_id") != self.client_id:
            return JSONResponse({"error": "unauthorized", "error_description": "No client with requested id"},
                                status_code=401)
        if params.get("client_secret") != self._client_secret:
            return JSONResponse({"error": "invalid_client", "error_description": "Bad client credentials"},
                                status_code=401)
        with self._lock:
            now = time.monotonic()
            self._state.calls.append(CallRecord(request.method, request.url.path, now, admitted=False))
            token = self._current_token
            if token is None or self._tokens[token] <= now:
                token = f"{uuid.uuid4()}:em"
                self._tokens[token] = now + self.token_lifetime
                self._current_token = token
            remaining = int(self._tokens[token] - now)
        return JSONResponse({"access_token": token, "token_type": "bearer", "expires_in": remaining,
                             "scope": self.api_user})

    def _api(self, handler: Callable[[Request, dict[str, str], bytes], dict[str, Any] | Response], *,
             max_body: int = MAX_BODY_BYTES) -> Callable:
        """Wrap an API handler with the checks every REST call goes through, in the real order. A handler
        answers an envelope, or a whole response (the bulk import's files and its 413)."""

        async def endpoint(request: Request) -> Response:
            body = await request.body()
            path = request.url.path
            record = CallRecord(request.method, path, time.monotonic(), admitted=False, body_bytes=len(body))
            with self._lock:
                self._state.max_body = max(self._state.max_body, len(body))
            if len(body) > max_body:
                return self._reject(record, "413", PlainTextResponse("Request Entity Too Large", 413))
            if len(str(request.url).encode()) > MAX_URI_BYTES:
                return self._reject(record, "414", PlainTextResponse("Request-URI Too Long", 414))
            params = dict(request.query_params)
            if request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
                params.update(_form(body))
                body = b""
            with self._lock:
                refusal = self._admit(request, params, record)
                if refusal is None:
                    self._in_flight += 1
                    self._state.max_concurrent = max(self._state.max_concurrent, self._in_flight)
            if refusal is not None:
                return refusal
            try:
                if self.latency:
                    await asyncio.sleep(self.latency)
                with self._lock:
                    self._request_id = _new_request_id()  # also the `request id` of the activities it logs
                    payload = handler(request, params, body)
                    if isinstance(payload, Response):
                        return payload
                    payload["requestId"] = self._request_id
            except ApiFailure as failure:
                payload = _failure(failure.code, failure.message)
            finally:
                with self._lock:
                    self._in_flight -= 1
            # pydantic-core serializes 300 results several times faster than json.dumps
            return Response(pydantic_core.to_json(payload), media_type="application/json")

        return endpoint

    def _reject(self, record: CallRecord, code: str, response: Response) -> Response:
        with self._lock:
            self._state.calls.append(replace(record, code=code))
        return response

    def _admit(self, request: Request, params: dict[str, str], record: CallRecord) -> Response | None:
        """Token, injected faults, quota, concurrency, window. Called with the lock held."""
        now = record.at

        def refuse(code: str, message: str) -> Response:
            self._state.calls.append(replace(record, code=code))
            return JSONResponse(_failure(code, message))

        if "access_token" in params:
            return refuse("601", "Access token invalid: send it in the Authorization header, not the query")
        auth = request.headers.get("authorization", "")
        token = auth[7:].strip() if auth.lower().startswith("bearer ") else ""
        if token not in self._tokens:
            return refuse("601", "Access token invalid")
        if self._tokens[token] <= now:
            return refuse("602", "Access token expired")
        fault = next((f for f in self._faults if f.path in (None, record.path)), None)
        if fault is not None:
            self._faults.remove(fault)
            if int(fault.code) < 600:
                self._state.calls.append(replace(record, code=fault.code))
                return PlainTextResponse("Injected failure", status_code=int(fault.code))
            return refuse(fault.code, "Injected failure")
        if self._quota_used >= self.daily_quota:
            return refuse("607", "Daily quota reached")
        if self._in_flight >= self.max_concurrency:
            return refuse("615", "Concurrent access limit reached")
        while self._window and self._window[0] <= now - self.window_seconds:
            self._window.popleft()
        if len(self._window) >= self.calls_per_window:
            return refuse("606", f"Max rate limit '{self.calls_per_window}' exceeded with in "
                                 f"'{self.window_seconds:g}' secs")
        self._window.append(now)
        self._quota_used += 1
        self._state.calls.append(replace(record, admitted=True))
        return None

    # -- handlers (called with the lock held) ------------------------------------------------------
    def _not_found(self, request: Request, params: dict[str, str], body: bytes) -> dict[str, Any]:
        raise ApiFailure("610", "Requested resource not found")

    def _custom_object_types(self, request: Request, params: dict[str, str], body: bytes) -> dict[str, Any]:
        names = [n for n in params.get("names", "").split(",") if n]
        return self._custom(lambda: _envelope(self.custom_objects.list_types(names)))

    def _custom_object_schema(self, request: Request, params: dict[str, str], body: bytes) -> dict[str, Any]:
        """Schema API (§B3): create/update a type's draft, add fields, approve, describe a state."""
        name, op = request.path_params.get("name"), request.path_params.get("op")
        objects = self.custom_objects
        if name is None:
            return self._custom(lambda: _envelope([objects.upsert_type(self._json_body(request, body))]))
        if op == "describe" and request.method == "GET":
            return self._custom(lambda: _envelope([objects.describe_schema(name, params.get("state"))]))
        if op == "addField" and request.method == "POST":
            return self._custom(lambda: _envelope(objects.add_fields(name, self._input(self._json_body(request,
                                                                                                        body)))))
        if op == "approve" and request.method == "POST":
            return self._custom(lambda: _envelope([objects.approve(name)]))
        raise ApiFailure("610", "Requested resource not found")

    def _custom_object_records(self, request: Request, params: dict[str, str], body: bytes) -> dict[str, Any]:
        name = request.path_params["name"]
        objects = self.custom_objects
        if request.url.path.endswith("/describe.json"):
            return self._custom(lambda: _envelope([objects.describe(name)]))
        if request.method == "GET" or params.get("_method") == "GET":
            values = [v for v in params.get("filterValues", "").split(",") if v]
            if not values:
                raise ApiFailure("701", "filterValues cannot be blank")
            fields = [n for n in params.get("fields", "").split(",") if n]
            return self._custom(lambda: self._page(objects.query(name, params.get("filterType", ""), values, fields),
                                                   params))
        payload = self._json_body(request, body)
        return self._custom(lambda: _envelope(objects.sync(name, payload, self._input(payload))))

    @staticmethod
    def _custom(answer: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        try:
            return answer()
        except SchemaRefused as refused:
            raise ApiFailure(refused.code, refused.message) from refused

    def _searchable(self) -> list[str]:
        custom = [f.name for f in self._lead_fields.values() if f.custom and f.data_type in LOOKUP_TYPES]
        return [*STANDARD_SEARCHABLE, *custom]

    def _describe2(self, request: Request, params: dict[str, str], body: bytes) -> dict[str, Any]:
        return _envelope([{"name": "API Lead", "searchableFields": [[n] for n in self._searchable()],
                           "fields": [f.describe2() for f in self._lead_fields.values()]}])

    def _describe(self, request: Request, params: dict[str, str], body: bytes) -> dict[str, Any]:
        return _envelope([
            {"id": i, "displayName": f.display_name, "dataType": f.data_type,
             **({"length": f.length} if f.length else {}),
             "rest": {"name": f.name, "readOnly": not f.updateable},
             "soap": {"name": f.name[:1].upper() + f.name[1:], "readOnly": not f.updateable}}
            for i, f in enumerate(self._lead_fields.values(), start=1)
        ])

    def _schema_field(self, request: Request, params: dict[str, str], body: bytes) -> dict[str, Any]:
        name = request.path_params["name"]
        fdef = self._lead_fields.get(name)
        if fdef is None:
            raise ApiFailure("1013", f"Field '{name}' not found")
        return _envelope([fdef.schema()])

    def _schema_fields(self, request: Request, params: dict[str, str], body: bytes) -> dict[str, Any]:
        if request.method == "GET":
            return self._page([f.schema() for f in self._lead_fields.values()], params)
        payload = self._json_body(request, body)
        items = payload.get("input")
        if not isinstance(items, list) or not items:
            raise ApiFailure("701", "input cannot be blank")
        if len(items) > MAX_FIELDS_PER_CREATE:
            raise ApiFailure("1003", f"Input size exceeds {MAX_FIELDS_PER_CREATE}")
        self._state.max_batch = max(self._state.max_batch, len(items))
        return _envelope([self._create_field(item) for item in items])

    def _create_field(self, item: Any) -> dict[str, Any]:
        name = item.get("name") if isinstance(item, dict) else None
        self._fields_asked.append(str(name))
        try:
            if not isinstance(item, dict) or not all(item.get(k) for k in ("name", "displayName", "dataType")):
                raise RecordSkip("1002", "displayName, name and dataType are required")
            display, data_type = item["displayName"], item["dataType"]
            if not isinstance(name, str) or not FIELD_NAME_RE.match(name):
                raise RecordSkip("1003", f"Invalid field name '{name}': start with a letter; letters, "
                                         "digits and _ only")
            if not isinstance(display, str) or not DISPLAY_NAME_RE.match(display):
                raise RecordSkip("1003", f"Invalid display name '{display}': no special characters")
            if data_type not in CREATABLE_TYPES:
                raise RecordSkip("1003", f"Invalid dataType '{data_type}'")
            if name.lower() in self._refused_fields:
                raise RecordSkip("1003", self._refused_fields[name.lower()])
            lowered = {f.name.lower() for f in self._lead_fields.values()}
            if name.lower() in lowered:
                raise RecordSkip("1017", f"Field '{name}' already exists")
            if display.lower() in {f.display_name.lower() for f in self._lead_fields.values()}:
                raise RecordSkip("1017", f"Display name '{display}' already exists")
        except RecordSkip as skip:
            return {"name": name, "status": "skipped", "reasons": [{"code": skip.code, "message": skip.message}]}
        self._lead_fields[name] = FieldDef(name, display, data_type, custom=True,
                                           description=str(item.get("description") or ""),
                                           hidden=bool(item.get("isHidden")))
        return {"name": name, "status": "created"}

    def _json_body(self, request: Request, body: bytes) -> dict[str, Any]:
        if not request.headers.get("content-type", "").lower().startswith("application/json"):
            raise ApiFailure("612", "Invalid Content Type")
        try:
            payload = pydantic_core.from_json(body)
        except ValueError as exc:
            raise ApiFailure("609", "Invalid JSON") from exc
        if not isinstance(payload, dict):
            raise ApiFailure("609", "Invalid JSON")
        return payload

    def _page(self, items: list[dict[str, Any]], params: dict[str, str]) -> dict[str, Any]:
        offset, size = _page_offset(params.get("nextPageToken")), _batch_size(params)
        page = items[offset:offset + size]
        more = offset + size < len(items)
        extra: dict[str, Any] = {"moreResult": more}
        if more:
            extra["nextPageToken"] = _page_token(offset + size)
        return _envelope(page, **extra)

    def _leads_endpoint(self, request: Request, params: dict[str, str], body: bytes) -> dict[str, Any]:
        if request.method == "GET" or params.get("_method") == "GET":
            return self._filter(self._leads, self._lead_fields, self._searchable(), DEFAULT_LEAD_FIELDS, params,
                                view=self._lead_view)
        payload = self._json_body(request, body)
        items = self._input(payload)
        action = payload.get("action", "createOrUpdate")
        lookup = payload.get("lookupField", "email")
        if action not in LEAD_ACTIONS:
            raise ApiFailure("1003", f"Invalid action '{action}'")
        if lookup == "id" and action != "updateOnly":
            raise ApiFailure("1003", "lookupField 'id' is only allowed with action updateOnly")
        if lookup not in self._searchable():
            raise ApiFailure("1011", f"Field '{lookup}' not supported as lookupField")
        return _envelope([self._outcome(lambda rec=rec: self._sync_lead(rec, action, lookup)) for rec in items])

    def _companies_endpoint(self, request: Request, params: dict[str, str], body: bytes) -> dict[str, Any]:
        if request.method == "GET" or params.get("_method") == "GET":
            return self._filter(self._companies, self._company_fields, list(COMPANY_SEARCHABLE),
                                ("externalCompanyId", "company"), params)
        return self._sync_objects(self._companies, self._company_fields, "externalCompanyId", request, body)

    def _sales_persons_endpoint(self, request: Request, params: dict[str, str], body: bytes) -> dict[str, Any]:
        if request.method == "GET" or params.get("_method") == "GET":
            return self._filter(self._sales_persons, self._sales_person_fields, list(SALES_PERSON_SEARCHABLE),
                                ("externalSalesPersonId", "updatedAt", "createdAt"), params)
        return self._sync_objects(self._sales_persons, self._sales_person_fields, "externalSalesPersonId", request,
                                  body)

    def _describe_sales_persons(self, request: Request, params: dict[str, str], body: bytes) -> dict[str, Any]:
        return _envelope([{"name": "SalesPerson", "idField": "id", "dedupeFields": ["externalSalesPersonId"],
                           "searchableFields": [[n] for n in SALES_PERSON_SEARCHABLE],
                           "fields": [f.describe2() for f in self._sales_person_fields.values()]}])

    def _sync_objects(self, table: Table, fields: dict[str, FieldDef], dedupe_field: str, request: Request,
                      body: bytes) -> dict[str, Any]:
        """Sync Companies / Sync Sales Persons: one result per input with its `seq`."""
        payload = self._json_body(request, body)
        items = self._input(payload)
        action = payload.get("action", "createOrUpdate")
        dedupe = payload.get("dedupeBy", "dedupeFields")
        if action not in LEAD_ACTIONS - {"createDuplicate"} or dedupe not in {"dedupeFields", "idField"}:
            raise ApiFailure("1003", "Invalid action or dedupeBy")
        key = dedupe_field if dedupe == "dedupeFields" else "id"
        results = []
        for seq, rec in enumerate(items):
            outcome = self._outcome(lambda rec=rec: self._sync_object(table, fields, rec, action, key))
            results.append({"seq": seq, **outcome})
        return _envelope(results)

    def _input(self, payload: dict[str, Any]) -> list[Any]:
        items = payload.get("input")
        if not isinstance(items, list) or not items:
            raise ApiFailure("701", "input cannot be blank")
        if len(items) > MAX_BATCH:
            raise ApiFailure("1003", f"Batch size {len(items)} exceeds {MAX_BATCH}")
        self._state.max_batch = max(self._state.max_batch, len(items))
        return items

    @staticmethod
    def _outcome(write: Callable[[], tuple[str, int]]) -> dict[str, Any]:
        try:
            status, row_id = write()
        except RecordSkip as skip:
            return {"status": "skipped", "reasons": [{"code": skip.code, "message": skip.message}]}
        return {"id": row_id, "status": status}

    @staticmethod
    def _validated(rec: Any, fields: dict[str, FieldDef], allow_id: bool) -> dict[str, Any]:
        if not isinstance(rec, dict):
            raise RecordSkip("1003", "Invalid record")
        for name, value in rec.items():
            if name == "id":
                if not allow_id:
                    raise RecordSkip("1003", "Field 'id' is only allowed with updateOnly")
                continue
            fdef = fields.get(name)
            if fdef is None:
                raise RecordSkip("1006", f"Field '{name}' not found")
            if not fdef.updateable:
                raise RecordSkip("1003", f"Field '{name}' is not updateable")
            check_value(fdef, value)
        return {k: v for k, v in rec.items() if k != "id"}

    @staticmethod
    def _match(table: Table, key: str, rec: dict[str, Any], action: str) -> int | None:
        """The id to update, None to create; skips per the action's rules."""
        value = rec.get(key)
        if value is None or value == "":
            raise RecordSkip("1003", f"Value for lookup field '{key}' is required")
        if action == "createDuplicate":
            return None
        ids = table.find(key, value)
        if len(ids) > 1:
            raise RecordSkip("1007", "Multiple records match the lookup criteria")
        if ids and action == "createOnly":
            raise RecordSkip("1005", "Lead already exists")
        if not ids and action == "updateOnly":
            raise RecordSkip("1004", "Lead not found")
        return ids[0] if ids else None

    def _sync_lead(self, rec: Any, action: str, lookup: str, method: str = "syncLead") -> tuple[str, int]:
        changes = self._validated(rec, self._lead_fields, allow_id=action == "updateOnly")
        self._check_sales_person(changes)
        row_id = self._match(self._leads, lookup, rec, action)
        if COMPANY_FIELDS_ON_LEAD.intersection(changes):
            current = self._leads.rows.get(row_id, {}) if row_id else {}
            company_id = changes.get("externalCompanyId", current.get("externalCompanyId"))
            if company_id and self._companies.find("externalCompanyId", company_id):
                raise RecordSkip("1021", "Company update not allowed in syncLead")
        status = "created" if row_id is None else "updated"
        return status, self._write_lead(row_id, changes, self._api_origin(method))

    def _sync_object(self, table: Table, fields: dict[str, FieldDef], rec: Any, action: str,
                     key: str) -> tuple[str, int]:
        changes = self._validated(rec, fields, allow_id=key == "id")
        if table is self._companies:
            self._check_sales_person(changes)
        row_id = self._match(table, key, rec, action)
        status = "created" if row_id is None else "updated"
        return status, table.write(row_id, changes)

    def _check_sales_person(self, changes: dict[str, Any]) -> None:
        person = changes.get("externalSalesPersonId")
        if person not in (None, "") and not self._sales_persons.find("externalSalesPersonId", person):
            raise RecordSkip("718", "ExternalSalesPersonID not found")

    def _lead_view(self, row: dict[str, Any]) -> dict[str, Any]:
        """A lead as reads show it: linked to a company (`externalCompanyId`), it shows the company's fields."""
        company_ids = self._companies.find("externalCompanyId", row["externalCompanyId"]) \
            if row.get("externalCompanyId") else []
        if not company_ids:
            return dict(row)
        company = self._companies.rows[company_ids[0]]
        return {**row, **{name: company.get(name) for name in COMPANY_FIELDS_ON_LEAD}}

    def _filter(self, table: Table, fields: dict[str, FieldDef], searchable: Iterable[str],
                default_fields: Iterable[str], params: dict[str, str],
                view: Callable[[dict[str, Any]], dict[str, Any]] = dict) -> dict[str, Any]:
        ids, wanted = filter_matches(table, fields, searchable, default_fields, params, "id")
        if len(ids) > MAX_FILTER_MATCHES:
            raise ApiFailure("1003", "Too many results match the filter")
        shown = [view(table.rows[i]) for i in ids]
        rows = [{"id": row["id"], **{n: row.get(n) for n in wanted if n != "id"}} for row in shown]
        return self._page(rows, params)

    # -- bulk lead import (C9) ------------------------------------------------------------------
    def _bulk_import(self, request: Request, params: dict[str, str], body: bytes) -> dict[str, Any] | Response:
        try:
            parts = multipart_fields(request.headers.get("content-type", ""), body)
        except ImportRefused as refused:
            raise ApiFailure(refused.code, refused.message) from None
        data = parts.get("file")
        if data is None:
            raise ApiFailure("701", "file cannot be blank")
        if len(data) >= MAX_FILE_BYTES:
            return PlainTextResponse("Request Entity Too Large", 413)
        form = {name: value.decode(errors="replace") for name, value in parts.items() if name != "file"}
        options = {**params, **form}
        lookups = {f.name for f in self._lead_fields.values() if f.custom and f.data_type in LOOKUP_TYPES}
        try:
            job = self.bulk.submit(data, options.get("format", "csv"), options.get("lookupField", "email"),
                                   self._lead_fields, lookups)
        except ImportRefused as refused:
            raise ApiFailure(refused.code, refused.message) from None
        return _envelope([job])

    def _bulk_status(self, request: Request, params: dict[str, str], body: bytes) -> dict[str, Any]:
        try:
            return _envelope([self.bulk.job(request.path_params["id"]).describe()])
        except ImportRefused as refused:
            raise ApiFailure(refused.code, refused.message) from None

    def _bulk_file(self, request: Request, params: dict[str, str], body: bytes) -> Response:
        which = request.path_params["which"]
        if which not in {"failures", "warnings"}:
            raise ApiFailure("610", "Requested resource not found")
        try:
            text = self.bulk.job(request.path_params["id"]).report(which)
        except ImportRefused as refused:
            raise ApiFailure(refused.code, refused.message) from None
        return PlainTextResponse(text, media_type="text/csv")

    def _import_row(self, values: dict[str, str], lookup: str) -> str | None:
        """One row of an import: insert-or-update by `lookup` (update only by `id`); raises RecordSkip."""
        record: dict[str, Any] = {}
        ignored = []
        for name, text in values.items():
            fdef = self._lead_fields.get(name)
            if text == "":
                continue
            if name == "id" or fdef is None:
                record[name] = text
            elif fdef.updateable:
                record[name] = _typed(fdef, text)
            else:
                ignored.append(name)
        self._sync_lead(record, "updateOnly" if lookup == "id" else "createOrUpdate", lookup, "importLead")
        return f"Field '{ignored[0]}' is read-only; its value was not imported" if ignored else None

    def import_jobs(self) -> list[dict[str, Any]]:
        """Every bulk import job's status, in submission order."""
        with self._lock:
            return [job.describe() for job in self.bulk.jobs()]

    # -- activities, merge and webhooks (two-way sync: reading changes, merge, Call Webhook) -------
    def change_by_person(self, lead_id: int, changes: dict[str, Any], source: str = "Web form fillout",
                         reason: str | None = None, user: str | None = None) -> None:
        """A change not made through the API (form fill, lead detail page, list import, smart
        campaign): its activities carry this Source and Reason and no API attributes."""
        with self._lock:
            if lead_id not in self._leads.rows:
                raise KeyError(lead_id)
            self._write_lead(lead_id, self._person_values(changes), Origin.person(source, reason, user))

    def create_by_person(self, values: dict[str, Any], source: str = "Web form fillout") -> int:
        """A person added outside the API (a form fill by someone new, a list import)."""
        with self._lock:
            return self._write_lead(None, self._person_values(values), Origin.person(source))

    def delete_by_person(self, lead_id: int) -> None:
        """Delete Person in Marketo: the lead goes and a Delete Lead activity stays."""
        with self._lock:
            row = self._leads.delete(lead_id)
            name = " ".join(str(row[n]) for n in ("firstName", "lastName") if row.get(n)) or str(row.get("email"))
            self._activities.append(lead_id, DELETE_LEAD, [], primary=(lead_id, name))

    def add_trigger_campaign(self, campaign: TriggerCampaign) -> None:
        with self._lock:
            self._campaigns.append(campaign)

    def activities(self) -> list[dict[str, Any]]:
        """Every activity logged, as Get Lead Activities shows it."""
        with self._lock:
            return [a.as_activity() for a in self._activities.items()]

    def webhook_deliveries(self) -> list[Delivery]:
        with self._lock:
            return list(self._deliveries)

    def _person_values(self, values: dict[str, Any]) -> dict[str, Any]:
        for name, value in values.items():
            if name not in self._lead_fields or not self._lead_fields[name].updateable:
                raise KeyError(name)
            check_value(self._lead_fields[name], value)
        return values

    def _api_origin(self, method: str) -> Origin:
        return Origin.api(self.api_user, self._request_id, method)

    def _write_lead(self, row_id: int | None, changes: dict[str, Any], origin: Origin) -> int:
        """Write a lead, log its activities and run the trigger campaigns they match."""
        before = dict(self._leads.rows[row_id]) if row_id is not None else None
        lead_id = self._leads.write(row_id, changes)
        after = self._leads.rows[lead_id]
        field_ids = {name: i for i, name in enumerate(self._lead_fields, start=1)}
        logged = self._activities.record_write(lead_id, before, {k: after.get(k) for k in changes}, origin,
                                               field_ids)
        changed = {a.change.name for a in logged if a.change}
        fields = [FieldInfo(f.name, f.display_name, f.data_type) for f in self._lead_fields.values()]
        for campaign in self._campaigns:
            if (before is None and campaign.fires_on("Lead is Created", set(), origin.source)) or (
                    changed and campaign.fires_on("Data Value Changes", changed, origin.source)):
                self._webhooks.send(campaign.webhook, dict(after), fields)
        return lead_id

    def _delivered(self, delivery: Delivery) -> None:
        with self._lock:
            self._deliveries.append(delivery)
            self._activities.append(delivery.lead_id, CALL_WEBHOOK, [("Error Type", delivery.error)],
                                    primary=(0, delivery.webhook))

    def _paging_token(self, request: Request, params: dict[str, str], body: bytes) -> dict[str, Any]:
        since = params.get("sinceDatetime")
        if not since:
            raise ApiFailure("701", "sinceDatetime cannot be blank")
        try:
            moment = datetime.fromisoformat(since)
        except ValueError as exc:
            raise ApiFailure("704", f"Invalid date format '{since}'") from exc
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return {"requestId": self._request_id, "success": True,
                "nextPageToken": self._activities.token_since(moment)}

    def _lead_changes(self, request: Request, params: dict[str, str], body: bytes) -> dict[str, Any]:
        """Only New Lead and Change Data Value; Change Data Value only for the fields asked for."""
        wanted = {n for n in params.get("fields", "").split(",") if n}
        if not wanted:
            raise ApiFailure("701", "fields cannot be blank")
        unknown = sorted(wanted - set(self._lead_fields))
        if unknown:
            raise ApiFailure("1006", f"Field '{unknown[0]}' not found")
        lead_ids = self._lead_ids(params)

        def keep(activity: Activity) -> bool:
            return (activity.type_id in LEAD_CHANGE_TYPES and (lead_ids is None or activity.lead_id in lead_ids)
                    and (activity.change is None or activity.change.name in wanted))

        return self._activity_page(params, keep, Activity.as_lead_change)

    def _lead_activities(self, request: Request, params: dict[str, str], body: bytes) -> dict[str, Any]:
        raw = [v for item in request.query_params.getlist("activityTypeIds") for v in item.split(",") if v]
        if not raw:
            raise ApiFailure("701", "activityTypeIds cannot be blank")
        if len(raw) > MAX_ACTIVITY_TYPE_IDS:
            raise ApiFailure("1003", f"activityTypeIds exceeds {MAX_ACTIVITY_TYPE_IDS}")
        try:
            type_ids = {int(v) for v in raw}
        except ValueError as exc:
            raise ApiFailure("1003", "Invalid activityTypeIds") from exc
        lead_ids = self._lead_ids(params)

        def keep(activity: Activity) -> bool:
            return activity.type_id in type_ids and (lead_ids is None or activity.lead_id in lead_ids)

        return self._activity_page(params, keep, Activity.as_activity)

    def _deleted_leads(self, request: Request, params: dict[str, str], body: bytes) -> dict[str, Any]:
        return self._activity_page(params, lambda activity: activity.type_id == DELETE_LEAD, Activity.as_activity)

    def _activity_types(self, request: Request, params: dict[str, str], body: bytes) -> dict[str, Any]:
        return _envelope([t.describe() for t in ACTIVITY_TYPES])

    @staticmethod
    def _lead_ids(params: dict[str, str]) -> set[int] | None:
        raw = [v for v in params.get("leadIds", "").split(",") if v]
        if not raw:
            return None
        if len(raw) > MAX_LEAD_IDS:
            raise ApiFailure("1003", f"leadIds exceeds {MAX_LEAD_IDS}")
        try:
            return {int(v) for v in raw}
        except ValueError as exc:
            raise ApiFailure("1003", "Invalid leadIds") from exc

    def _activity_page(self, params: dict[str, str], keep: Callable[[Activity], bool],
                       render: Callable[[Activity], dict[str, Any]]) -> dict[str, Any]:
        token = params.get("nextPageToken")
        if not token:
            raise ApiFailure("701", "nextPageToken cannot be blank")
        try:
            items, next_token, more = self._activities.page(token, _batch_size(params), keep)
        except BadToken as exc:
            raise ApiFailure("1003", "Invalid nextPageToken") from exc
        return _envelope([render(a) for a in items], moreResult=more, nextPageToken=next_token)

    def _merge(self, request: Request, params: dict[str, str], body: bytes) -> dict[str, Any]:
        """The winner keeps its values and takes a loser's where its own are empty; losers go."""
        winner = request.path_params["id"]
        try:
            losers = [int(v) for v in (params.get("leadIds") or params.get("leadId") or "").split(",") if v]
        except ValueError as exc:
            raise ApiFailure("1003", "Invalid leadIds") from exc
        if not losers:
            raise ApiFailure("701", "leadIds cannot be blank")
        if len(losers) > MAX_MERGE_LOSERS:
            raise ApiFailure("1080", f"Cannot merge more than {MAX_MERGE_LOSERS} leads at once")
        if winner in losers:
            raise ApiFailure("1003", "The winning lead cannot be merged into itself")
        missing = [i for i in (winner, *losers) if i not in self._leads.rows]
        if missing:
            raise ApiFailure("1004", f"Lead '{missing[0]}' not found")
        current = self._leads.rows[winner]
        taken: dict[str, Any] = {}
        for loser in losers:
            for name, value in self._leads.delete(loser).items():
                if (name not in {"id", "createdAt", "updatedAt"} and current.get(name) in (None, "")
                        and value not in (None, "")):
                    taken.setdefault(name, value)
        if taken:
            self._leads.write(winner, taken)
        self._activities.append(winner, MERGE_LEADS, [("Merge IDs", ",".join(map(str, losers))),
                                                      ("Merge Fields", ",".join(taken)),
                                                      *self._api_origin("mergeLeads").change()],
                                primary=(winner, str(winner)))
        return {"requestId": self._request_id, "success": True}
