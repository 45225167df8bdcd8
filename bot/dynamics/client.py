"""The Dataverse Web API v9.2 client: WhoAmI, users and roles, metadata, counts, paged reads, changes.

Retries live here and nowhere else: a 401 drops the token and retries once, a 429 waits the
server's `Retry-After`, 5xx and connection errors back off (capped); everything else becomes
a typed error from `bot.dynamics.errors`. Record pages are generators that hold one page at
a time, so memory does not grow with the table.
"""

from __future__ import annotations

import json
import random
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import parse_qs, quote, urlsplit

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bot import metrics
from bot.dynamics.custom_tables import CustomTableReads
from bot.dynamics.egress import GuardedTransport, HostAllowlist, url_origin
from bot.dynamics.errors import (
    ChangeTokenExpired,
    DataverseAccessDenied,
    DataverseBadRequest,
    DataverseError,
    DataverseNotFound,
    DataverseThrottled,
    DataverseUnauthorized,
    DynamicsUnreachable,
    NotDataverse,
    OffOriginLink,
    RepeatedLink,
)
from bot.dynamics.writes import DataverseWrites
from bot.models import MODIFIED_ON, AttributeMeta, Entity, EntityMetadata
from bot.tls import ssl_context

API_PATH = "/api/data/v9.2/"
# Labels of choices and lookups, and which table a lookup points to (a Customer or Owner lookup can point to several).
FORMATTED_VALUES = ('odata.include-annotations="OData.Community.Display.V1.FormattedValue,'
                    'Microsoft.Dynamics.CRM.lookuplogicalname"')
TOTAL_COUNT = (
    'odata.include-annotations="Microsoft.Dynamics.CRM.totalrecordcount,'
    'Microsoft.Dynamics.CRM.totalrecordcountlimitexceeded"'
)
_SAFE = "$,()'=:@/*"
READ_BY_IDS_CHUNK = 50  # ids per `$filter` (an `or` of `eq`s), far below URL length limits
_RETRYABLE_STATUS = {500, 502, 503, 504}
_TRANSIENT = (httpx.ConnectError, httpx.ReadError, httpx.WriteError, httpx.RemoteProtocolError, httpx.TimeoutException)


class TokenProvider(Protocol):
    def token(self) -> str: ...

    def invalidate(self) -> None: ...


# -- response models (what this client depends on) --------------------------------------------------


class _Model(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="ignore")


class WhoAmI(_Model):
    user_id: str = Field(alias="UserId")
    business_unit_id: str = Field(alias="BusinessUnitId")
    organization_id: str = Field(alias="OrganizationId")


class SystemUser(_Model):
    systemuserid: str
    fullname: str | None = None
    domainname: str | None = None
    internalemailaddress: str | None = None
    isdisabled: bool = False
    applicationid: str | None = None


class _Collection(_Model):
    value: list[dict[str, Any]]
    next_link: str | None = Field(None, alias="@odata.nextLink")
    delta_link: str | None = Field(None, alias="@odata.deltaLink")
    total: int | None = Field(None, alias="@Microsoft.Dynamics.CRM.totalrecordcount")
    limit_exceeded: bool | None = Field(None, alias="@Microsoft.Dynamics.CRM.totalrecordcountlimitexceeded")


class _ErrorDetail(_Model):
    code: str = ""
    message: str = ""


class _ErrorBody(_Model):
    error: _ErrorDetail


class _Value(_Model):
    value: str | None = Field(None, alias="Value")


class _Label(_Model):
    label: str | None = Field(None, alias="Label")


class _DisplayName(_Model):
    user_localized_label: _Label | None = Field(None, alias="UserLocalizedLabel")


class _EntityDefinition(_Model):
    logical_name: str = Field(alias="LogicalName")
    entity_set_name: str = Field(alias="EntitySetName")
    primary_id: str = Field(alias="PrimaryIdAttribute")
    change_tracking: bool | None = Field(None, alias="ChangeTrackingEnabled")


class _AttributeRow(_Model):
    logical_name: str = Field(alias="LogicalName")
    attribute_of: str | None = Field(None, alias="AttributeOf")
    attribute_type: str | None = Field(None, alias="AttributeType")
    attribute_type_name: _Value | None = Field(None, alias="AttributeTypeName")
    valid_for_read: bool | None = Field(None, alias="IsValidForRead")
    is_custom: bool | None = Field(None, alias="IsCustomAttribute")
    valid_for_update: bool | None = Field(None, alias="IsValidForUpdate")
    source_type: int | None = Field(None, alias="SourceType")
    display_name: _DisplayName | None = Field(None, alias="DisplayName")
    format_name: _Value | None = Field(None, alias="FormatName")
    format: str | None = Field(None, alias="Format")
    datetime_behavior: _Value | None = Field(None, alias="DateTimeBehavior")

    @property
    def label(self) -> str:
        label = self.display_name.user_localized_label if self.display_name else None
        return (label.label if label and label.label else None) or self.logical_name

    @property
    def type_name(self) -> str:
        if self.attribute_type_name and self.attribute_type_name.value:
            return self.attribute_type_name.value
        return f"{self.attribute_type or 'Virtual'}Type"


class _AttributeRows(_Model):
    value: list[_AttributeRow]


# -- pages --------------------------------------------------------------------------------------


@dataclass(slots=True)
class Page:
    records: list[dict[str, Any]]
    link: str | None  # the URL that fetched this page (None = the first page of a fresh read)
    next_link: str | None
    delta_link: str | None


@dataclass(slots=True)
class ChangePage:
    records: list[dict[str, Any]]
    deleted_ids: list[str]
    next_link: str | None
    delta_link: str | None
    link: str | None = None  # the URL that fetched this page


def _guid(value: str) -> str:
    """`value` as an OData GUID literal; anything else never reaches a query."""
    return str(uuid.UUID(value))


def odata_string(value: str) -> str:
    """A string literal for `$filter`: single quotes doubled [doc]."""
    return "'" + value.replace("'", "''") + "'"


def sync_filter_expression(attribute: str) -> str:
    """Marketo's semantics: only an explicit false excludes (null must be kept explicitly, B5)."""
    return f"({attribute} eq true or {attribute} eq null)"


def api_root(base_url: str) -> str:
    root = base_url.rstrip("/")
    return root + "/" if root.endswith(API_PATH.rstrip("/")) else root + API_PATH


def _backoff(attempt: int, cap: float = 30.0) -> float:
    return min(cap, 0.5 * 2**attempt) * random.uniform(0.75, 1.0)


def _retry_after(response: httpx.Response) -> float | None:
    try:
        return max(0.0, float(response.headers["Retry-After"]))
    except (KeyError, ValueError):
        return None


def _error_detail(response: httpx.Response) -> _ErrorDetail:
    try:
        return _ErrorBody.model_validate_json(response.content).error
    except ValidationError:
        return _ErrorDetail()


def _is_tls_failure(exc: Exception) -> bool:
    text = str(exc).lower()
    return "certificate" in text or "ssl" in text or "tls" in text


class DataverseClient(DataverseWrites, CustomTableReads):
    def __init__(
        self,
        base_url: str,
        token_provider: TokenProvider,
        *,
        ca_bundle: str | None = None,
        host_allowlist: HostAllowlist | None = None,
        timeout: float = 30.0,
        max_retries: int = 6,
        page_size: int = 5000,
        max_throttle_wait: float = 1800.0,
        sleep: Callable[[float], None] = time.sleep,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.api = api_root(self.base_url)
        self._origin = url_origin(self.base_url)
        self._tokens = token_provider
        self.max_retries = max_retries
        self.page_size = min(max(1, page_size), 5000)
        self.max_throttle_wait = max_throttle_wait
        self._sleep = sleep
        self._calls_lock = threading.Lock()
        self.calls = 0
        self.throttled = 0
        self._http = httpx.Client(
            timeout=timeout,
            transport=transport or GuardedTransport(host_allowlist or HostAllowlist(), ssl_context(ca_bundle)),
            trust_env=False,
            headers={
                "Accept": "application/json",
                "OData-MaxVersion": "4.0",
                "OData-Version": "4.0",
                "If-None-Match": "null",
            },
        )

    # -- plumbing -----------------------------------------------------------------------------------
    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> DataverseClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def url(self, path: str, params: dict[str, str] | None = None) -> str:
        """An API URL with the query encoded as Dataverse expects (`$` kept, spaces as %20)."""
        query = "&".join(f"{k}={quote(v, safe=_SAFE)}" for k, v in (params or {}).items())
        return self.api + path + (f"?{query}" if query else "")

    def _count_call(self) -> None:
        with self._calls_lock:
            self.calls += 1

    def get(self, url: str, prefer: list[str] | None = None) -> httpx.Response:
        """GET with the retry rules in the module docstring; raises the typed errors."""
        return self.send("GET", url, prefer=prefer)

    def send(
        self,
        method: str,
        url: str,
        *,
        prefer: list[str] | None = None,
        body: Any = None,
        content: bytes | None = None,
        headers: dict[str, str] | None = None,
        idempotent: bool = True,
    ) -> httpx.Response:
        """One request (`body` as JSON, or raw `content`) with the retry rules in the module docstring;
        raises the typed errors.
        A request that is not `idempotent` (a create) is retried only when the server cannot have
        run it (401, 429), never after a 5xx or a broken connection."""
        headers = {**(headers or {}), **({"Prefer": ",".join(prefer)} if prefer else {})}
        if body is not None:
            headers["Content-Type"] = "application/json"
            content = json.dumps(body).encode()
        attempt = 0
        reauthenticated = False
        waited_for_throttle = 0.0
        while True:
            headers["Authorization"] = f"Bearer {self._tokens.token()}"
            self._count_call()
            try:
                response = self._http.request(method, url, headers=headers, content=content)
            except _TRANSIENT as exc:
                if _is_tls_failure(exc) or attempt >= self.max_retries or not idempotent:
                    raise DynamicsUnreachable(self.base_url, f"{type(exc).__name__}: {exc}") from None
                self._sleep(_backoff(attempt))
                attempt += 1
                continue
            status = response.status_code
            if status < 400:
                return response
            if status == 401 and not reauthenticated:
                self._tokens.invalidate()
                reauthenticated = True
                continue
            if status == 429:
                self.throttled += 1
                metrics.DATAVERSE_THROTTLED.inc()
                wait = _retry_after(response)
                wait = _backoff(attempt) if wait is None else wait
                waited_for_throttle += wait
                if waited_for_throttle > self.max_throttle_wait:
                    detail = _error_detail(response)
                    raise DataverseThrottled(status, detail.code, detail.message)
                self._sleep(wait)
                continue
            if status in _RETRYABLE_STATUS and attempt < self.max_retries and idempotent:
                wait = _retry_after(response)
                self._sleep(_backoff(attempt) if wait is None else min(wait, 60.0))
                attempt += 1
                continue
            raise self._error(url, response)

    @staticmethod
    def _error(url: str, response: httpx.Response) -> DataverseError:
        detail = _error_detail(response)
        status = response.status_code
        if "$deltatoken=" in url and status in {400, 404, 410}:
            # [?] The docs only say an expired token "is an error"; any rejection of a delta link
            # we were given means the same thing to us: start over with a full read.
            return ChangeTokenExpired(status, detail.code, detail.message)
        cls = {400: DataverseBadRequest, 401: DataverseUnauthorized, 403: DataverseAccessDenied,
               404: DataverseNotFound}.get(status, DataverseError)
        return cls(status, detail.code, detail.message)

    def _json(self, path: str, params: dict[str, str] | None = None) -> bytes:
        return self.get(self.url(path, params)).content

    # -- identity and setup checks ---------------------------------------------------------------------
    def whoami(self) -> WhoAmI:
        try:
            return WhoAmI.model_validate_json(self._json("WhoAmI"))
        except (DataverseNotFound, DataverseBadRequest, ValidationError) as exc:
            raise NotDataverse(self.base_url, f"WhoAmI: {type(exc).__name__}") from None

    def get_user(self, user_id: str) -> SystemUser:
        select = "fullname,domainname,internalemailaddress,isdisabled,applicationid"
        return SystemUser.model_validate_json(self._json(f"systemusers({user_id})", {"$select": select}))

    def user_roles(self, user_id: str) -> list[str]:
        body = _Collection.model_validate_json(
            self._json(f"systemusers({user_id})/systemuserroles_association", {"$select": "name,roleid"})
        )
        return [str(row.get("name", "")) for row in body.value]

    def solution_installed(self, friendly_name: str) -> bool:
        params = {"$select": "uniquename,friendlyname,version", "$filter": f"friendlyname eq {odata_string(friendly_name)}"}
        return bool(_Collection.model_validate_json(self._json("solutions", params)).value)

    # -- metadata ------------------------------------------------------------------------------------
    def _definition(self, table: str) -> _EntityDefinition:
        return _EntityDefinition.model_validate_json(self._json(f"EntityDefinitions(LogicalName='{table}')", {
            "$select": "LogicalName,EntitySetName,PrimaryIdAttribute,ChangeTrackingEnabled"}))

    def change_tracking_enabled(self, table: Entity | str) -> bool:
        """The table's `ChangeTrackingEnabled` (any table, e.g. `connection`), read without its attributes."""
        return self._definition(str(table)).change_tracking is not False

    def entity_metadata(self, entity: Entity | str) -> EntityMetadata:
        entity = Entity(entity)
        definition_path = f"EntityDefinitions(LogicalName='{entity.value}')"
        definition = self._definition(entity.value)
        return EntityMetadata(
            entity=entity,
            entity_set=definition.entity_set_name,
            primary_id=definition.primary_id,
            change_tracking=definition.change_tracking is not False,
            attributes=self.attributes(definition_path),
        )

    def attributes(self, definition_path: str) -> list[AttributeMeta]:
        """The readable columns of `EntityDefinitions(LogicalName='...')`, by logical name."""
        rows = _AttributeRows.model_validate_json(self._json(f"{definition_path}/Attributes", {
            "$select": "LogicalName,SchemaName,DisplayName,AttributeType,AttributeTypeName,IsValidForRead,"
            "IsValidForUpdate,SourceType,IsCustomAttribute,AttributeOf"})).value
        formats = self._cast_values(definition_path, "StringAttributeMetadata", "FormatName")
        behaviors = self._cast_values(definition_path, "DateTimeAttributeMetadata", "DateTimeBehavior")
        attributes = [
            AttributeMeta(
                logical_name=row.logical_name,
                display_name=row.label,
                attribute_type=row.type_name,
                format=formats.get(row.logical_name),
                datetime_behavior=behaviors.get(row.logical_name),
                is_custom=bool(row.is_custom),
                valid_for_update=row.valid_for_update is not False,
                source_type=row.source_type,
            )
            for row in rows
            if row.attribute_of is None and row.valid_for_read is not False
        ]
        return sorted(attributes, key=lambda a: a.logical_name)

    def _cast_values(self, definition_path: str, metadata_type: str, prop: str) -> dict[str, str]:
        """Type-specific properties need a cast segment (B4): logical name -> FormatName/DateTimeBehavior."""
        path = f"{definition_path}/Attributes/Microsoft.Dynamics.CRM.{metadata_type}"
        rows = _AttributeRows.model_validate_json(self._json(path, {"$select": f"LogicalName,{prop}"})).value
        out: dict[str, str] = {}
        for row in rows:
            value = row.format_name or row.datetime_behavior
            if value and value.value:
                out[row.logical_name] = value.value
            elif row.format:
                out[row.logical_name] = row.format
        return out

    # -- records -------------------------------------------------------------------------------------
    def count(self, entity: Entity | str, *, filter_attribute: str | None = None) -> int:
        """Rows (that pass Marketo's filter when `filter_attribute` is given): the total-count
        annotation when it is exact, else `/$count`."""
        entity = Entity(entity)
        return self.count_rows(entity.entity_set, entity.primary_id,
                               sync_filter_expression(filter_attribute) if filter_attribute else None)

    def count_rows(self, entity_set: str, primary_id: str, filter_expression: str | None = None) -> int:
        """Rows of `entity_set` (matching `filter_expression`); also for tables that are no sync entity."""
        params = {"$select": primary_id, "$count": "true"}
        if filter_expression:
            params["$filter"] = filter_expression
        body = _Collection.model_validate_json(
            self.get(self.url(entity_set, params), ["odata.maxpagesize=1", TOTAL_COUNT]).content
        )
        if body.total is not None and body.total >= 0 and not body.limit_exceeded:
            return body.total
        params.pop("$select")
        params.pop("$count")
        return int(self.get(self.url(f"{entity_set}/$count", params)).text.strip().lstrip("\ufeff"))

    def _same_origin(self, link: str) -> str:
        """`link` when it points at the organization itself (scheme, host and port), so the token
        never travels anywhere else; else `OffOriginLink`."""
        scheme, host, port = url_origin(link)
        if (scheme, host, port) != self._origin:
            org_scheme, org_host, org_port = self._origin
            raise OffOriginLink(f"{scheme}://{host}:{port}", f"{org_scheme}://{org_host}:{org_port}")
        return link

    def _pages(self, url: str, link: str | None, prefer: list[str]) -> Iterator[tuple[_Collection, str | None]]:
        """Follows `@odata.nextLink` on the organization's origin only, and never the same link twice."""
        followed = {self._same_origin(url)}
        while True:
            body = _Collection.model_validate_json(self.get(url, prefer).content)
            yield body, link
            if not body.next_link:
                return
            url = link = self._same_origin(body.next_link)
            if url in followed:
                raise RepeatedLink()
            followed.add(url)

    def iter_pages(
        self,
        entity: Entity | str,
        select: list[str],
        *,
        track_changes: bool = True,
        start_link: str | None = None,
    ) -> Iterator[Page]:
        """Every record, one page at a time. With `track_changes` the last page carries the delta
        link for incremental syncs. `start_link` (a saved `Page.link`) resumes at that page."""
        return self.iter_rows(Entity(entity).entity_set, select, track_changes=track_changes, start_link=start_link)

    def iter_rows(self, entity_set: str, select: list[str], *, track_changes: bool = False,
                  filter_expression: str | None = None, start_link: str | None = None) -> Iterator[Page]:
        """Rows of any table (also one that is no sync entity), page by page; see `iter_pages`."""
        prefer = [f"odata.maxpagesize={self.page_size}", FORMATTED_VALUES]
        if track_changes:
            prefer.append("odata.track-changes")
        params = {"$select": ",".join(dict.fromkeys(select))}
        if filter_expression:
            params["$filter"] = filter_expression
        url = start_link or self.url(entity_set, params)
        for body, link in self._pages(url, start_link, prefer):
            yield Page(records=body.value, link=link, next_link=body.next_link, delta_link=body.delta_link)

    def iter_modified_since(self, entity: Entity | str, select: list[str], since: str) -> Iterator[Page]:
        """Records whose `modifiedon` is at or after `since` (ISO 8601 UTC), oldest change first: the
        read for a table without change tracking. `modifiedon` is always selected. Deletes are not seen."""
        entity = Entity(entity)
        return self.iter_rows_modified_since(entity.entity_set, entity.primary_id, select, since)

    def iter_rows_modified_since(self, entity_set: str, primary_id: str, select: list[str], since: str,
                                 filter_expression: str | None = None) -> Iterator[Page]:
        """`iter_modified_since` for any table (and, with `filter_expression`, only its matching rows)."""
        condition = f"{MODIFIED_ON} ge {since}"
        params = {
            "$select": ",".join(dict.fromkeys([*select, MODIFIED_ON])),
            "$filter": f"{condition} and ({filter_expression})" if filter_expression else condition,
            "$orderby": f"{MODIFIED_ON} asc,{primary_id} asc",
        }
        prefer = [f"odata.maxpagesize={self.page_size}", FORMATTED_VALUES]
        for body, link in self._pages(self.url(entity_set, params), None, prefer):
            yield Page(records=body.value, link=link, next_link=body.next_link, delta_link=None)

    def read_by_ids(self, entity: Entity | str, ids: list[str], select: list[str]) -> list[dict[str, Any]]:
        """The records of `ids` that still exist; a deleted record is simply absent from the answer."""
        entity = Entity(entity)
        return self.read_where_in(entity.entity_set, entity.primary_id, ids, [entity.primary_id, *select])

    def read_where_in(self, entity_set: str, column: str, values: list[str], select: list[str]) -> list[dict[str, Any]]:
        """Rows of `entity_set` whose GUID `column` is one of `values` (one request per `READ_BY_IDS_CHUNK`);
        also for tables that are no sync entity, such as an opportunity's `connections`."""
        prefer = [f"odata.maxpagesize={self.page_size}", FORMATTED_VALUES]
        found: list[dict[str, Any]] = []
        for start in range(0, len(values), READ_BY_IDS_CHUNK):
            chunk = values[start:start + READ_BY_IDS_CHUNK]
            params = {"$select": ",".join(dict.fromkeys(select)),
                      "$filter": " or ".join(f"{column} eq {_guid(i)}" for i in chunk)}
            for body, _ in self._pages(self.url(entity_set, params), None, prefer):
                found.extend(body.value)
        return found

    def iter_changes(self, delta_link: str, select: list[str]) -> Iterator[ChangePage]:
        """Changes since `delta_link` was issued: new/updated records and deleted ids, page by page.

        Raises `ChangeTokenExpired` when the link is no longer valid or was made for fewer columns
        than `select` (the field selection grew): either way a full read is needed.
        """
        linked = delta_link_columns(delta_link)
        missing = [name for name in select if name not in linked]
        if missing:
            raise ChangeTokenExpired(0, "", f"delta link lacks {', '.join(missing)}",
                                     problem="The field selection changed since the last sync.")
        prefer = [f"odata.maxpagesize={self.page_size}", FORMATTED_VALUES, "odata.track-changes"]
        for body, link in self._pages(delta_link, delta_link, prefer):
            records: list[dict[str, Any]] = []
            deleted: list[str] = []
            for row in body.value:
                if str(row.get("@odata.context", "")).endswith("$deletedEntity") or row.get("reason") == "deleted":
                    deleted.append(str(row["id"]))
                else:
                    records.append(row)
            yield ChangePage(records=records, deleted_ids=deleted, next_link=body.next_link,
                             delta_link=body.delta_link, link=link)


def delta_link_columns(delta_link: str) -> set[str]:
    """The columns a change-tracking link was made for (its `$select`)."""
    query = parse_qs(urlsplit(delta_link).query)
    return {name for value in query.get("$select", []) for name in value.split(",")}


def probe_dataverse(
    url: str, *, ca_bundle: str | None = None, host_allowlist: HostAllowlist | None = None, timeout: float = 10.0
) -> None:
    """Is `url` reachable and shaped like Dataverse? An unauthenticated WhoAmI must answer 401 with a
    Bearer challenge. Raises `DynamicsUnreachable`, `NotDataverse` or `HostRefused`; needs no sign-in."""
    transport = GuardedTransport(host_allowlist or HostAllowlist(), ssl_context(ca_bundle))
    try:
        with httpx.Client(timeout=timeout, transport=transport, trust_env=False) as http:
            response = http.get(api_root(url) + "WhoAmI", headers={"Accept": "application/json"})
    except httpx.HTTPError as exc:
        raise DynamicsUnreachable(url, f"{type(exc).__name__}: {exc}") from None
    challenge = response.headers.get("WWW-Authenticate", "").lower()
    if response.status_code == 401 and challenge.startswith("bearer"):
        return
    raise NotDataverse(url, f"unauthenticated WhoAmI answered HTTP {response.status_code}")
