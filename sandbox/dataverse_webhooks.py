"""Dataverse webhooks for the emulator: `serviceendpoints`, `sdkmessageprocessingsteps` and delivery.

A registration is a service endpoint (contract 8 = Webhook, with its key as an HTTP header,
`?code=` or a query string) and one step per message and table. After a committed create,
update or delete of a registered table, the step's request (a trimmed `RemoteExecutionContext`)
is posted to the endpoint in the background, in order, as an asynchronous PostOperation step
would be: 60 s timeout, a non-2xx fails the delivery, only 502/503/504 get exactly one retry,
and a failure is left as a System Job (`asyncoperations`, `statuscode` 31).
"""

from __future__ import annotations

import threading
import uuid
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx

from sandbox.odata import ODataError

WEBHOOK_CONTRACT = 8
AUTH_WEBHOOK_KEY, AUTH_HTTP_HEADER, AUTH_QUERY_STRING = 4, 5, 6
ENTITIES = ("lead", "contact", "account")
BULK_MESSAGES = ("CreateMultiple", "UpdateMultiple", "UpsertMultiple")
MESSAGES = ("Create", "Update", "Delete", *BULK_MESSAGES)
DELIVERY_TIMEOUT = 60.0
_RETRIED = {502, 503, 504}
_CONTRACTS = "http://schemas.microsoft.com/xrm/2011/Contracts"
_SYNTAX = "0x80060888"


def message_id(name: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"sdkmessage:{name}"))


def filter_id(message: str, entity: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"sdkmessagefilter:{message}:{entity}"))


def _settings(authvalue: str) -> dict[str, str]:
    """`<settings><setting name="k" value="v" /></settings>` as a dict."""
    try:
        root = ET.fromstring(authvalue)
    except ET.ParseError:
        raise ODataError(400, "0x80040203", "The authvalue is not valid settings XML.") from None
    return {s.get("name", ""): s.get("value", "") for s in root.iter("setting")}


@dataclass
class Endpoint:
    id: str
    name: str
    url: str
    authtype: int
    authvalue: str

    def request_target(self) -> tuple[str, dict[str, str]]:
        """The URL and the extra headers a delivery carries, per `authtype`."""
        if self.authtype == AUTH_HTTP_HEADER:
            return self.url, _settings(self.authvalue)
        extra = {"code": self.authvalue} if self.authtype == AUTH_WEBHOOK_KEY else _settings(self.authvalue)
        joiner = "&" if urlsplit(self.url).query else "?"
        return self.url + joiner + urlencode(extra), {}


@dataclass
class Step:
    id: str
    name: str
    endpoint_id: str
    message: str
    entity: str
    filtering: set[str] = field(default_factory=set)


@dataclass(frozen=True)
class Change:
    """One committed write, as the event pipeline sees it."""

    message: str  # Create, Update or Delete
    entity: str
    record_id: str
    attributes: dict[str, Any]  # the Target's columns: all set ones on Create, the changed ones on Update
    user_id: str


def _bind_id(body: dict[str, Any], navigation: str) -> str:
    value = str(body.get(f"{navigation}@odata.bind", ""))
    start, end = value.find("("), value.find(")")
    if start < 0 or end < start:
        raise ODataError(400, "0x80040203", f"'{navigation}@odata.bind' is required.")
    return value[start + 1:end].lower()


def _value(name: str, value: Any, lookups: dict[str, str]) -> Any:
    if name in lookups and value is not None:
        return {"__type": f"EntityReference:{_CONTRACTS}", "Id": value, "LogicalName": lookups[name]}
    if isinstance(value, str) and name in {"createdon", "modifiedon"}:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        return f"/Date({int(moment.timestamp() * 1000)})/"
    return value


class WebhookRegistry:
    """The registered endpoints and steps of one organization, and the background deliveries."""

    def __init__(self, organization: str) -> None:
        self.organization = organization
        self.endpoints: dict[str, Endpoint] = {}
        self.steps: dict[str, Step] = {}
        self.failed_jobs: list[dict[str, Any]] = []
        self.deliveries = 0
        self.bulk_entities = set(ENTITIES)  # tables whose CreateMultiple/UpdateMultiple/UpsertMultiple exist
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dataverse-webhooks")
        self._http = httpx.Client(timeout=DELIVERY_TIMEOUT, trust_env=False)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._http.close()

    # -- the Web API tables --------------------------------------------------------------------
    def table(self, name: str) -> tuple[list[dict[str, Any]], set[str]] | None:
        """The rows and columns of a webhook-related table (None: not one of them). Navigation
        filters such as `sdkmessageid/name` are served as flattened columns of that name."""
        rows: list[dict[str, Any]]
        if name == "sdkmessages":
            rows = [{"sdkmessageid": message_id(m), "name": m} for m in MESSAGES]
            columns = {"sdkmessageid", "name"}
        elif name == "sdkmessagefilters":
            rows = [{"sdkmessagefilterid": filter_id(m, e), "sdkmessageid/name": m, "primaryobjecttypecode": e}
                    for m in MESSAGES for e in ENTITIES if m not in BULK_MESSAGES or e in self.bulk_entities]
            columns = {"sdkmessagefilterid", "sdkmessageid/name", "primaryobjecttypecode"}
        elif name == "serviceendpoints":
            rows = [{"serviceendpointid": e.id, "name": e.name, "url": e.url, "contract": WEBHOOK_CONTRACT,
                     "authtype": e.authtype, "messageformat": 2, "isauthvalueset": bool(e.authvalue)}
                    for e in self.endpoints.values()]
            columns = {"serviceendpointid", "name", "url", "contract", "authtype", "messageformat", "isauthvalueset"}
        elif name == "sdkmessageprocessingsteps":
            rows = [{"sdkmessageprocessingstepid": s.id, "name": s.name, "mode": 1, "stage": 40,
                     "filteringattributes": ",".join(sorted(s.filtering)) or None,
                     "_eventhandler_value": s.endpoint_id, "_sdkmessageid_value": message_id(s.message),
                     "_sdkmessagefilterid_value": filter_id(s.message, s.entity)} for s in self.steps.values()]
            columns = {"sdkmessageprocessingstepid", "name", "mode", "stage", "filteringattributes",
                       "_eventhandler_value"}
        elif name == "asyncoperations":
            rows = list(self.failed_jobs)
            columns = {"asyncoperationid", "statuscode", "_owningextensionid_value", "friendlymessage", "errorcode",
                       "message", "completedon"}
        else:
            return None
        return rows, columns

    def create_endpoint(self, body: dict[str, Any]) -> str:
        if body.get("contract") != WEBHOOK_CONTRACT:
            raise ODataError(400, "0x80040203", "Only webhook service endpoints (contract 8) are emulated.")
        authtype = body.get("authtype")
        if authtype not in {AUTH_WEBHOOK_KEY, AUTH_HTTP_HEADER, AUTH_QUERY_STRING}:
            raise ODataError(400, "0x80040203", f"authtype {authtype} is not valid for a webhook.")
        url, authvalue = str(body.get("url", "")), str(body.get("authvalue", ""))
        if urlsplit(url).scheme not in {"http", "https"}:
            raise ODataError(400, "0x80040203", "The webhook url must be an absolute http or https URL.")
        if authtype != AUTH_WEBHOOK_KEY:
            _settings(authvalue)
        endpoint = Endpoint(str(uuid.uuid4()), str(body.get("name", "")), url, authtype, authvalue)
        with self._lock:
            self.endpoints[endpoint.id] = endpoint
        return endpoint.id

    def create_step(self, body: dict[str, Any]) -> str:
        endpoint_id = _bind_id(body, "eventhandler_serviceendpoint")
        message = next((m for m in MESSAGES if message_id(m) == _bind_id(body, "sdkmessageid")), None)
        wanted = _bind_id(body, "sdkmessagefilterid")
        entity = next((e for m in MESSAGES for e in ENTITIES
                       if m == message and filter_id(m, e) == wanted), None)
        if endpoint_id not in self.endpoints or message is None or entity is None:
            raise ODataError(404, "0x80040217", "The service endpoint, message or message filter does not exist.")
        if body.get("mode") != 1 or body.get("stage") != 40:
            raise ODataError(400, "0x80040203", "Only asynchronous PostOperation steps (mode 1, stage 40) "
                             "are emulated.")
        filtering = {a.strip() for a in str(body.get("filteringattributes") or "").split(",") if a.strip()}
        step = Step(str(uuid.uuid4()), str(body.get("name", "")), endpoint_id, message, entity, filtering)
        with self._lock:
            self.steps[step.id] = step
        return step.id

    def delete(self, table: str, row_id: str) -> None:
        with self._lock:
            rows: dict[str, Any] = self.endpoints if table == "serviceendpoints" else self.steps
            if rows.pop(row_id.lower(), None) is None:
                raise ODataError(404, "0x80040217", f"{table[:-1]} With Id = {row_id} Does Not Exist")
            if table == "serviceendpoints":
                self.steps = {k: s for k, s in self.steps.items() if s.endpoint_id != row_id.lower()}

    # -- delivery ---------------------------------------------------------------------------------
    def listens(self, entity: str, message: str) -> bool:
        """Is any step registered for `message` on `entity`?"""
        with self._lock:
            return any(s.entity == entity and s.message == message for s in self.steps.values())

    def publish(self, change: Change, lookups: dict[str, str]) -> None:
        """Queues one delivery per step registered for this change (after the write committed)."""
        with self._lock:
            steps = [s for s in self.steps.values() if s.entity == change.entity and s.message == change.message
                     and (change.message != "Update" or not s.filtering or s.filtering & set(change.attributes))]
            endpoints = {s.id: self.endpoints[s.endpoint_id] for s in steps}
        for step in steps:
            self._pool.submit(self._deliver, step, endpoints[step.id], self.context(step, change, lookups))

    def context(self, step: Step, change: Change, lookups: dict[str, str]) -> dict[str, Any]:
        """The request body: a `RemoteExecutionContext` as the docs show it, trimmed."""
        if change.message == "Delete":
            target: dict[str, Any] = {"__type": f"EntityReference:{_CONTRACTS}", "Id": change.record_id,
                                      "LogicalName": change.entity}
        else:
            attributes = [{"key": k, "value": _value(k, v, lookups)} for k, v in change.attributes.items()]
            target = {"__type": f"Entity:{_CONTRACTS}", "LogicalName": change.entity, "Id": change.record_id,
                      "Attributes": attributes}
        now = int(datetime.now(UTC).timestamp() * 1000)
        return {
            "MessageName": change.message, "PrimaryEntityName": change.entity, "PrimaryEntityId": change.record_id,
            "Stage": 40, "Mode": 1, "Depth": 1, "UserId": change.user_id, "InitiatingUserId": change.user_id,
            "CorrelationId": str(uuid.uuid4()), "OperationCreatedOn": f"/Date({now})/",
            "InputParameters": [{"key": "Target", "value": target}],
            "PreEntityImages": [], "PostEntityImages": [],
            "OwningExtension": {"Id": step.id, "LogicalName": "sdkmessageprocessingstep"},
        }

    def _deliver(self, step: Step, endpoint: Endpoint, body: dict[str, Any]) -> None:
        url, auth_headers = endpoint.request_target()
        headers = {
            "x-ms-dynamics-organization": self.organization, "x-ms-dynamics-entity-name": body["PrimaryEntityName"],
            "x-ms-dynamics-request-name": body["MessageName"], "x-ms-correlation-request-id": body["CorrelationId"],
            **auth_headers,
        }
        failure = ""
        for _attempt in range(2):
            try:
                response = self._http.post(url, json=body, headers=headers)
            except httpx.HTTPError as exc:
                failure = f"{type(exc).__name__}: {exc}"
                break
            self.deliveries += 1
            if response.is_success:
                return
            failure = f"The webhook answered HTTP {response.status_code}."
            if response.status_code not in _RETRIED:
                break
        with self._lock:
            self.failed_jobs.append({
                "asyncoperationid": str(uuid.uuid4()), "statuscode": 31, "_owningextensionid_value": step.id,
                "friendlymessage": failure, "errorcode": -2147220970, "message": failure,
                "completedon": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")})
