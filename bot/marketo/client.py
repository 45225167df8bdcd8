"""The Marketo REST client (reference section C).

Every REST call goes through the shared limiter, carries the token only in the
`Authorization` header, is parsed into pydantic models, and maps failures to the typed
errors of `bot.marketo.errors`. Retryable failures are retried with jittered exponential
backoff; 606/615 also push every process back through `limiter.backoff`. A 601/602 gets
one fresh token and one retry. The client is thread-safe: the sync runs several
`sync_leads` calls at once from threads on one instance.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar
from urllib.parse import urlencode, urlsplit

import httpx
import pydantic_core
from pydantic import BaseModel, TypeAdapter

from bot import metrics
from bot.marketo.activities import (
    ActivitiesPage,
    Activity,
    ActivityType,
    LeadChangesPage,
    lead_changes_page,
)
from bot.marketo.custom_objects import CustomObjectsApi
from bot.marketo.errors import (
    RATE_CODES,
    TOKEN_CODES,
    UNCOUNTED_CODES,
    ImportTooLarge,
    MarketoAuthError,
    MarketoError,
    MarketoFatal,
    TooManyImports,
    connection_error,
    error_for,
    http_error,
)
from bot.marketo.limiter import SharedLimiter
from bot.marketo.models import (
    CreateFieldsResult,
    Envelope,
    FieldCreateResult,
    ImportStatus,
    LeadDescription,
    Reason,
    RecordResult,
    SchemaField,
    TokenResponse,
)
from bot.models import MarketoField
from bot.tls import ssl_context

MAX_RECORDS_PER_CALL = 300
MAX_BODY_BYTES = 1_000_000
MAX_FIELDS_PER_CREATE = 100
MAX_URL_BYTES = 7_000  # Marketo refuses URIs over 8 KB (414); longer reads go as POST with _method=GET
ROLE_QUERY_CHUNK = 100  # opportunity ids (36-character GUIDs) per roles query: the URL stays under MAX_URL_BYTES
TOKEN_REFRESH_MARGIN = 60.0
DEFAULT_RATE_BACKOFF = 20.0  # Marketo: back off at least a window (20 s) after 606
MAX_LEAD_IDS = 30  # leadIds on activity reads
MAX_MERGE_LOSERS = 25
IMPORT_QUEUE_PAUSE = 5.0  # first wait after 1016 (the queue of 10 imports is full)
MAX_IMPORT_QUEUE_PAUSE = 30.0
ACTIVITY_TYPES_TTL = 86_400.0  # type ids vary by subscription but not by the hour: cache for a day


_RESULTS = TypeAdapter(list[RecordResult])  # one validation per call, not one per record
_T = TypeVar("_T")


@dataclass(frozen=True)
class Upload:
    """A file sent as the multipart part `file`, read from disk on each attempt (never held in memory)."""

    path: str
    filename: str
    form: dict[str, str]


@dataclass(frozen=True)
class _Request:
    method: str
    path: str
    params: dict[str, Any] | None = None
    content: bytes | None = None
    form: dict[str, str] | None = None
    upload: Upload | None = None


class TokenCache(Protocol):
    """Where processes share the access token (`Store.marketo_token`: encrypted in Redis)."""

    def load(self) -> str | None: ...

    def save(self, value: str, ttl: int) -> None: ...

    def forget(self) -> None: ...


class WriteLog(Protocol):
    """Where the `requestId` of every lead write is kept (`Store.marketo_writes`): Marketo logs it as
    the `request id` of the activities the write causes, which tells our own changes apart."""

    def remember(self, request_id: str) -> None: ...


class _CachedToken(BaseModel):
    access_token: str
    expires_at: float  # epoch seconds
    refresh_at: float
    scope: str | None = None  # the API user


def _dumps(value: Any) -> bytes:
    """Compact UTF-8 JSON, as `json.dumps(separators=(",", ":"), ensure_ascii=False)` but several times faster."""
    return pydantic_core.to_json(value)


def chunk_records(records: list[dict[str, Any]], head: bytes, tail: bytes = b"]}",
                  max_records: int = MAX_RECORDS_PER_CALL,
                  max_bytes: int = MAX_BODY_BYTES) -> Iterator[tuple[list[int], bytes]]:
    """Split records into request bodies of at most `max_records` and `max_bytes`.

    Yields (input indexes, body). A record too large to fit in any body on its own is
    yielded alone with an empty body, so the caller can report it skipped.
    """
    indexes: list[int] = []
    parts: list[bytes] = []
    size = len(head) + len(tail)
    for i, record in enumerate(records):
        encoded = _dumps(record)
        if len(head) + len(tail) + len(encoded) > max_bytes:
            yield [i], b""
            continue
        if indexes and (len(indexes) >= max_records or size + len(encoded) + 1 > max_bytes):
            yield indexes, head + b",".join(parts) + tail
            indexes, parts, size = [], [], len(head) + len(tail)
        indexes.append(i)
        parts.append(encoded)
        size += len(encoded) + (1 if len(parts) > 1 else 0)
    if indexes:
        yield indexes, head + b",".join(parts) + tail


class MarketoClient(CustomObjectsApi):
    def __init__(
        self,
        base_url: str,
        client_id: str,
        client_secret: str,
        *,
        limiter: SharedLimiter | None = None,
        token_cache: TokenCache | None = None,
        ca_bundle: str | None = None,
        timeout: float = 30.0,
        max_retries: int = 8,
        sleep: Callable[[float], None] = time.sleep,
        batch_size: int = MAX_RECORDS_PER_CALL,
        daily_quota: int | None = None,
        write_log: WriteLog | None = None,
    ) -> None:
        """`token_cache` shares the access token between workers. `batch_size` (≤ 300) is for tests.
        With `daily_quota` and a limiter, no call is made once the subscription's calls today (counted
        in Redis by every process) reach it: DailyQuotaExceeded, as Marketo's own 607 would say. The
        limiter reserves the quota with the slot, so the count never passes it."""
        self.base_url = base_url.rstrip("/")
        self.host = urlsplit(self.base_url).netloc or self.base_url
        self._client_id = client_id
        self._client_secret = client_secret
        self.limiter = limiter
        self.daily_quota = daily_quota
        self._write_log = write_log
        self._cache = token_cache
        self.max_retries = max_retries
        self._sleep = sleep
        self.batch_size = max(1, min(batch_size, MAX_RECORDS_PER_CALL))
        pool = limiter.max_concurrency if limiter else 10
        self._http = httpx.Client(
            base_url=self.base_url,
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
            limits=httpx.Limits(max_connections=pool + 2, max_keepalive_connections=pool + 2),
            verify=ssl_context(ca_bundle),
        )
        self._token_lock = threading.Lock()
        self._token: _CachedToken | None = None
        self._count_lock = threading.Lock()
        self.calls_made = 0
        self._activity_types: tuple[float, list[ActivityType]] | None = None

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> MarketoClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- identity ------------------------------------------------------------------------------
    def _access_token(self) -> str:
        with self._token_lock:
            now = time.time()
            if self._token and now < self._token.refresh_at:
                return self._token.access_token
            if self._cache is not None:
                raw = self._cache.load()
                cached = _CachedToken.model_validate_json(raw) if raw else None
                if cached and now < cached.refresh_at:
                    self._token = cached
                    return cached.access_token
            self._token = self._fetch_token(now)
            if self._cache is not None:
                ttl = max(1, int(self._token.expires_at - now))
                self._cache.save(self._token.model_dump_json(), ttl)
            return self._token.access_token

    def _fetch_token(self, now: float) -> _CachedToken:
        """POST with a form body, so the secret is in no URL that a log could print."""
        form = {"grant_type": "client_credentials", "client_id": self._client_id,
                "client_secret": self._client_secret}
        try:
            response = self._http.post("/identity/oauth/token", data=form)
        except httpx.TransportError as exc:
            raise connection_error(self.host, type(exc).__name__) from None
        if response.status_code in (400, 401):
            raise MarketoAuthError(_oauth_description(response))
        if response.status_code != 200:
            raise http_error(response.status_code, self.host)
        token = TokenResponse.model_validate_json(response.content)
        expires_at = now + token.expires_in
        previous = self._token.access_token if self._token else None
        # The same token comes back until it expires (C1): then use it to the end, don't re-ask.
        fresh = token.access_token != previous and token.expires_in > 2 * TOKEN_REFRESH_MARGIN
        refresh_at = expires_at - TOKEN_REFRESH_MARGIN if fresh else expires_at
        return _CachedToken(access_token=token.access_token, expires_at=expires_at, refresh_at=refresh_at,
                            scope=token.scope)

    def _drop_token(self, rejected: str) -> None:
        with self._token_lock:
            if self._token and self._token.access_token == rejected:
                self._token = None
            if self._cache is not None:
                raw = self._cache.load()
                if raw and _CachedToken.model_validate_json(raw).access_token == rejected:
                    self._cache.forget()

    # -- the one request path -------------------------------------------------------------------
    def _call(self, method: str, path: str, *, params: dict[str, Any] | None = None,
              content: bytes | None = None, form: dict[str, str] | None = None,
              upload: Upload | None = None) -> Envelope:
        """One API call, retried as its error allows; `upload` sends a file as multipart (bulk import)."""
        request = _Request(method, path, params, content, form, upload)
        return self._retried(lambda: self._envelope(*self._exchange(request)))

    def _download(self, path: str) -> bytes:
        """A file the API answers instead of JSON (bulk import failures and warnings)."""
        request = _Request("GET", path)
        return self._retried(lambda: self._file(*self._exchange(request)))

    def _retried(self, send: Callable[[], _T]) -> _T:
        attempt = 0
        reauthorised = False
        while True:
            try:
                answer = send()
            except MarketoError as error:
                # the limiter's own refusal of a used-up quota counts as the 607 Marketo would answer
                metrics.MARKETO_CALLS.labels(metrics.marketo_outcome(error.code)).inc()
                if error.code in TOKEN_CODES and not reauthorised:
                    reauthorised = True
                    continue
                if not error.retryable or attempt >= self.max_retries:
                    raise
                attempt += 1
                self._wait(error, attempt)
                continue
            metrics.MARKETO_CALLS.labels("ok").inc()
            return answer

    def _exchange(self, request: _Request) -> tuple[httpx.Response, str, str | None]:
        """One HTTP request: (response, the token it carried, the quota day it was counted on). The token
        is read inside the slot: a wait for the limiter must not let it expire between reading and sending."""
        headers = {"Accept": "application/json"}
        if request.content is not None:
            headers["Content-Type"] = "application/json"
        with self.limiter.slot(quota=self.daily_quota) if self.limiter else nullcontext() as quota_day:
            token = self._access_token()
            headers["Authorization"] = f"Bearer {token}"
            try:
                response = self._request(request, headers)
            except httpx.TransportError as exc:
                if isinstance(exc, httpx.ConnectError):
                    self._give_back(quota_day)  # never sent: Marketo did not count it
                raise connection_error(self.host, type(exc).__name__) from None
        return response, token, quota_day

    def _request(self, request: _Request, headers: dict[str, str]) -> httpx.Response:
        if request.upload is None:
            return self._http.request(request.method, request.path, params=request.params, content=request.content,
                                      data=request.form, headers=headers)
        with open(request.upload.path, "rb") as file:  # httpx streams it in chunks
            return self._http.request(request.method, request.path, params=request.params,
                                      data=request.upload.form, headers=headers,
                                      files={"file": (request.upload.filename, file, "text/csv")})

    def _file(self, response: httpx.Response, token: str, quota_day: str | None) -> bytes:
        if response.status_code == 200 and not response.headers.get("content-type", "").startswith("application/json"):
            self._count()
            return response.content
        self._envelope(response, token, quota_day)  # raises Marketo's error
        raise MarketoFatal("invalid-response", "Marketo answered JSON where a file was expected")

    def _envelope(self, response: httpx.Response, token: str, quota_day: str | None) -> Envelope:
        """The JSON envelope of an answer, or its typed error. A token Marketo rejects is dropped here."""
        if response.status_code != 200:
            self._count()
            raise http_error(response.status_code, self.host)
        try:
            envelope = Envelope.model_validate_json(response.content)
        except ValueError:
            self._count()
            raise MarketoFatal("invalid-response", "Marketo answered with something that is not its JSON "
                                                   "envelope") from None
        self._count()
        if envelope.success:
            return envelope
        first = envelope.errors[0] if envelope.errors else Reason(code="unknown", message="no error given")
        if first.code in UNCOUNTED_CODES:
            self._give_back(quota_day)
        if first.code in TOKEN_CODES:
            self._drop_token(token)
        raise error_for(first.code, first.message)

    def _count(self) -> None:
        with self._count_lock:
            self.calls_made += 1

    def _give_back(self, quota_day: str | None) -> None:
        """The limiter counted this call on the quota when it granted the slot; Marketo did not."""
        if self.limiter and quota_day:
            self.limiter.give_back(quota_day)

    def _wait(self, error: MarketoError, attempt: int) -> None:
        if error.code in RATE_CODES:
            window = self.limiter.window_seconds if self.limiter else DEFAULT_RATE_BACKOFF
            delay = window if error.code == "606" else window / 20
            if self.limiter:
                self.limiter.backoff(delay)  # every process waits; slot() honours it
                return
            self._sleep(delay)
            return
        self._sleep(min(30.0, 0.5 * 2 ** (attempt - 1)) * random.uniform(0.5, 1.0))

    # -- describe and schema ----------------------------------------------------------------------
    def describe_leads(self) -> LeadDescription:
        envelope = self._call("GET", "/rest/v1/leads/describe2.json")
        if not envelope.result:
            raise MarketoFatal("describe", "describe2 returned no result")
        return LeadDescription.model_validate(envelope.result[0])

    @staticmethod
    def _paged(fetch: Callable[[dict[str, Any]], Envelope], params: dict[str, Any]) -> Iterator[Any]:
        """Every result of a paged read, following `nextPageToken` while `moreResult`."""
        while True:
            envelope = fetch(params)
            yield from envelope.result
            if not envelope.more_result or not envelope.next_page_token:
                return
            params = {**params, "nextPageToken": envelope.next_page_token}

    def list_lead_fields(self) -> list[MarketoField]:
        def fetch(params: dict[str, Any]) -> Envelope:
            return self._call("GET", "/rest/v1/leads/schema/fields.json", params=params)

        rows = self._paged(fetch, {"batchSize": MAX_RECORDS_PER_CALL})
        return [SchemaField.model_validate(row).to_field() for row in rows]

    def create_lead_fields(self, fields: list[MarketoField]) -> CreateFieldsResult:
        """Create the fields that do not exist yet. Re-reads the schema first and never re-creates;
        a create that loses a race (1017 already exists) counts as existing."""
        known = {f.name.lower() for f in self.list_lead_fields()}
        outcome = CreateFieldsResult()
        wanted: dict[str, MarketoField] = {}
        for f in fields:
            if f.name.lower() in known:
                outcome.existing.append(f.name)
            else:
                wanted.setdefault(f.name.lower(), f)
        todo = list(wanted.values())
        for start in range(0, len(todo), MAX_FIELDS_PER_CREATE):
            chunk = todo[start:start + MAX_FIELDS_PER_CREATE]
            body = {"input": [{"displayName": f.display_name, "name": f.name, "dataType": f.data_type,
                               "description": f.description, "isHidden": False,
                               "isHtmlEncodingInEmail": True, "isSensitive": False} for f in chunk]}
            envelope = self._call("POST", "/rest/v1/leads/schema/fields.json", content=_dumps(body))
            for f, row in zip(chunk, envelope.result, strict=False):
                result = FieldCreateResult.model_validate(row)
                if result.status != "skipped":
                    outcome.created.append(f.name)
                elif any(r.code == "1017" for r in result.reasons):
                    outcome.existing.append(f.name)
                else:
                    reason = "; ".join(f"{r.code}: {r.message}" for r in result.reasons) or "skipped"
                    outcome.skipped.append((f.name, reason))
        return outcome

    # -- writes -----------------------------------------------------------------------------------
    def _sync(self, path: str, records: list[dict[str, Any]], head: dict[str, Any]) -> list[RecordResult]:
        opening = _dumps(head)[:-1] + b',"input":['
        results: list[RecordResult | None] = [None] * len(records)
        for indexes, body in chunk_records(records, opening, max_records=self.batch_size):
            if not body:
                results[indexes[0]] = RecordResult(status="skipped", reasons=[Reason(
                    code="413", message="Record is larger than Marketo's 1 MB request limit")])
                continue
            envelope = self._call("POST", path, content=body)
            if self._write_log is not None and envelope.request_id:
                self._write_log.remember(envelope.request_id)
            if len(envelope.result) != len(indexes):
                raise MarketoFatal("invalid-response", f"{len(envelope.result)} results for "
                                                       f"{len(indexes)} records")
            batch = _RESULTS.validate_python(envelope.result)
            if all(r.seq is not None for r in batch):
                batch.sort(key=lambda r: r.seq)  # type: ignore[arg-type, return-value]
            for i, result in zip(indexes, batch, strict=True):
                results[i] = result
        return results  # type: ignore[return-value]

    def sync_leads(self, records: list[dict[str, Any]], lookup_field: str,
                   action: str = "createOrUpdate") -> list[RecordResult]:
        """Upsert leads; one result per record, in input order (≤ 300 records and ≤ 1 MB per call)."""
        head = {"action": action, "lookupField": lookup_field, "asyncProcessing": False}
        return self._sync("/rest/v1/leads.json", records, head)

    def sync_companies(self, records: list[dict[str, Any]],
                       action: str = "createOrUpdate") -> list[RecordResult]:
        """Upsert companies deduped on `externalCompanyId`; results in input order."""
        return self._sync("/rest/v1/companies.json", records, {"action": action, "dedupeBy": "dedupeFields"})

    def sync_sales_persons(self, records: list[dict[str, Any]]) -> list[RecordResult]:
        """Upsert sales persons deduped on `externalSalesPersonId`; results in input order."""
        return self._sync("/rest/v1/salespersons.json", records, {"action": "createOrUpdate", "dedupeBy": "dedupeFields"})
    def sync_opportunities(self, records: list[dict[str, Any]],
                           action: str = "createOrUpdate") -> list[RecordResult]:
        """Upsert opportunities deduped on `externalOpportunityId` (sync-more §B2); results in input order."""
        return self._sync("/rest/v1/opportunities.json", records, {"action": action, "dedupeBy": "dedupeFields"})

    def sync_opportunity_roles(self, records: list[dict[str, Any]]) -> list[RecordResult]:
        """Upsert opportunity roles deduped on `externalOpportunityId+leadId+role`; results in input order."""
        return self._sync("/rest/v1/opportunities/roles.json", records,
                          {"action": "createOrUpdate", "dedupeBy": "dedupeFields"})

    def opportunity_roles(self, opportunity_ids: list[str]) -> list[dict[str, Any]]:
        """The opportunity roles of `opportunity_ids` (`externalOpportunityId`, `leadId`, `role`, `isPrimary`),
        queried by `externalOpportunityId` in chunks that keep the URL short, paged."""
        found: list[dict[str, Any]] = []
        fields = "externalOpportunityId,leadId,role,isPrimary"

        def fetch(params: dict[str, Any]) -> Envelope:
            return self._call("GET", "/rest/v1/opportunities/roles.json", params=params)

        for start in range(0, len(opportunity_ids), ROLE_QUERY_CHUNK):
            chunk = opportunity_ids[start:start + ROLE_QUERY_CHUNK]
            found.extend(self._paged(fetch, {"filterType": "externalOpportunityId", "filterValues": ",".join(chunk),
                                             "fields": fields, "batchSize": MAX_RECORDS_PER_CALL}))
        return found

    def delete_opportunity_roles(self, roles: list[dict[str, Any]]) -> list[RecordResult]:
        """Delete opportunity roles by their compound key `externalOpportunityId+leadId+role`; results in
        input order (status `deleted`, or skipped with the reason)."""
        keys = [{name: role[name] for name in ("externalOpportunityId", "leadId", "role")} for role in roles]
        return self._sync("/rest/v1/opportunities/roles/delete.json", keys, {"deleteBy": "dedupeFields"})

    def get_leads(self, filter_type: str, values: list[str], fields: list[str]) -> list[dict[str, Any]]:
        """Leads whose `filter_type` is one of `values` (≤ 300 per call, paged)."""
        found: list[dict[str, Any]] = []
        for start in range(0, len(values), MAX_RECORDS_PER_CALL):
            params: dict[str, Any] = {"filterType": filter_type, "batchSize": MAX_RECORDS_PER_CALL,
                                      "filterValues": ",".join(values[start:start + MAX_RECORDS_PER_CALL]),
                                      "fields": ",".join(fields)}
            found.extend(self._paged(self._read_leads, params))
        return found

    def _read_leads(self, params: dict[str, Any]) -> Envelope:
        if len(urlencode(params)) + len(self.base_url) > MAX_URL_BYTES:
            return self._call("POST", "/rest/v1/leads.json", params={"_method": "GET"},
                              form={k: str(v) for k, v in params.items()})
        return self._call("GET", "/rest/v1/leads.json", params=params)

    # -- bulk lead import (C9): same host, `/bulk` instead of `/rest` ------------------------------
    def import_leads(self, path: str, lookup_field: str, *, queue_wait: float = 600.0) -> ImportStatus:
        """Upload the CSV file at `path` as one import job (streamed from disk); returns it `Queued`.

        1016 (the subscription's queue of 10 is full) is waited out with a growing pause, for at most
        `queue_wait` seconds, then raised as TooManyImports; HTTP 413 (10 MB or more) is ImportTooLarge."""
        upload = Upload(path, "leads.csv", {"format": "csv", "lookupField": lookup_field})
        deadline = time.monotonic() + queue_wait
        pause = IMPORT_QUEUE_PAUSE
        while True:
            try:
                envelope = self._call("POST", "/bulk/v1/leads.json", params={"format": "csv"}, upload=upload)
            except TooManyImports:
                if time.monotonic() + pause > deadline:
                    raise
                self._sleep(pause)
                pause = min(pause * 2, MAX_IMPORT_QUEUE_PAUSE)
                continue
            except MarketoFatal as error:
                if error.code == "413":
                    raise ImportTooLarge("413", "bulk import file too large",
                                         user_message=ImportTooLarge.user_message) from None
                raise
            return _import_status(envelope)

    def import_status(self, batch_id: int) -> ImportStatus:
        return _import_status(self._call("GET", f"/bulk/v1/leads/batch/{batch_id}.json"))

    def import_failures(self, batch_id: int) -> bytes:
        """The rows that failed, as CSV: the uploaded columns plus `Import Failure Reason`."""
        return self._download(f"/bulk/v1/leads/batch/{batch_id}/failures.json")

    def import_warnings(self, batch_id: int) -> bytes:
        """The rows imported with a warning, as CSV: the uploaded columns plus `Import Warning Reason`."""
        return self._download(f"/bulk/v1/leads/batch/{batch_id}/warnings.json")

    # -- activities: Marketo's changes, for the sync back to Dynamics ------------------------------
    @property
    def api_user(self) -> str | None:
        """The API user this client writes as (the token's `scope`): the `modifying user` of its writes."""
        self._access_token()
        with self._token_lock:
            return self._token.scope if self._token else None

    def paging_token(self, since: datetime) -> str:
        """A token for the activities from `since` (an aware datetime; sent in UTC, rounded down to the second)."""
        moment = since.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
        envelope = self._call("GET", "/rest/v1/activities/pagingtoken.json", params={"sinceDatetime": moment})
        return _next_token(envelope)

    def lead_changes(self, token: str, fields: list[str], *, lead_ids: list[int] | None = None) -> LeadChangesPage:
        """One page of New Lead and Change Data Value items (changes of `fields` only) from `token`.
        A page may be short, even empty, while `more` is true."""
        params: dict[str, Any] = {"nextPageToken": token, "fields": ",".join(fields), "batchSize": self.batch_size}
        params.update(_lead_ids(lead_ids))
        envelope = self._call("GET", "/rest/v1/activities/leadchanges.json", params=params)
        return lead_changes_page(envelope.result, _next_token(envelope), envelope.more_result, self.api_user)

    def iter_lead_changes(self, token: str, fields: list[str]) -> Iterator[LeadChangesPage]:
        """Every page from `token` up to the one with `more` false. Save each page's `next_token` once
        the page is handled: a restart from it neither loses nor repeats a change, and the last
        page's token is where the next cycle starts."""
        while True:
            page = self.lead_changes(token, fields)
            yield page
            if not page.more:
                return
            token = page.next_token

    def lead_activities(self, token: str, type_ids: list[int], *,
                        lead_ids: list[int] | None = None) -> ActivitiesPage:
        """One page of activities of the given types (at most 10) from `token`."""
        params: dict[str, Any] = {"nextPageToken": token, "activityTypeIds": ",".join(map(str, type_ids)),
                                  "batchSize": self.batch_size}
        params.update(_lead_ids(lead_ids))
        return _activities_page(self._call("GET", "/rest/v1/activities.json", params=params))

    def deleted_leads(self, token: str) -> ActivitiesPage:
        """One page of Delete Lead activities from `token` (Marketo may prune them after 14 days)."""
        params = {"nextPageToken": token, "batchSize": self.batch_size}
        return _activities_page(self._call("GET", "/rest/v1/activities/deletedleads.json", params=params))

    def activity_types(self) -> list[ActivityType]:
        """The subscription's activity types, cached for a day."""
        cached = self._activity_types
        if cached is None or time.monotonic() - cached[0] > ACTIVITY_TYPES_TTL:
            envelope = self._call("GET", "/rest/v1/activities/types.json")
            cached = (time.monotonic(), [ActivityType.model_validate(row) for row in envelope.result])
            self._activity_types = cached
        return cached[1]

    def activity_type_id(self, name: str) -> int:
        """The id of the activity type called `name` (ids vary by subscription, names do not)."""
        wanted = name.casefold()
        found = next((t.id for t in self.activity_types() if t.name.casefold() == wanted), None)
        if found is None:
            raise MarketoFatal("activity-type", f"Marketo has no activity type named {name!r}")
        return found

    def merge_leads(self, winner: int, losers: list[int]) -> None:
        """Merge `losers` into `winner` (the winner's values win unless empty), 25 losers per call."""
        for start in range(0, len(losers), MAX_MERGE_LOSERS):
            chunk = losers[start:start + MAX_MERGE_LOSERS]
            self._call("POST", f"/rest/v1/leads/{winner}/merge.json", params={"leadIds": ",".join(map(str, chunk))})


def _lead_ids(lead_ids: list[int] | None) -> dict[str, str]:
    if not lead_ids:
        return {}
    if len(lead_ids) > MAX_LEAD_IDS:
        raise ValueError(f"at most {MAX_LEAD_IDS} lead ids per activity read")
    return {"leadIds": ",".join(map(str, lead_ids))}


def _import_status(envelope: Envelope) -> ImportStatus:
    if not envelope.result:
        raise MarketoFatal("invalid-response", "Marketo returned no import job")
    return ImportStatus.model_validate(envelope.result[0])


def _next_token(envelope: Envelope) -> str:
    if not envelope.next_page_token:
        raise MarketoFatal("invalid-response", "Marketo returned no nextPageToken")
    return envelope.next_page_token


def _activities_page(envelope: Envelope) -> ActivitiesPage:
    return ActivitiesPage(activities=[Activity.model_validate(row) for row in envelope.result],
                          next_token=_next_token(envelope), more=envelope.more_result)


def _oauth_description(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return f"HTTP {response.status_code}"
    return str(body.get("error_description") or body.get("error") or f"HTTP {response.status_code}")
