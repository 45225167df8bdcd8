"""Marketo webhooks for the emulator: a definition, the trigger campaign that calls it, delivery.

As the real service: the URL is sent exactly as written after token substitution (no
encoding added), the template is the body for POST/PUT/PATCH/DELETE, string tokens are quoted
by Marketo itself with JSON token encoding, custom headers may hold tokens. Calls are serial
(one sender thread), wait up to 30 s, and are never retried: at most once.

Lead tokens are `{{lead.<Display Name>}}` (e.g. `{{lead.Email Address}}`, `{{lead.Id}}`);
the REST name works too. A trigger campaign listens to "Data Value Changes" (optionally on
some fields) or "Lead is Created", and may exclude sources, e.g. `source_is_not={"Web service
API"}` so that API writes do not fire it — without that constraint they do.
"""

from __future__ import annotations

import json
import queue
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import quote_plus

import httpx

TOKEN_RE = re.compile(r"\{\{\s*lead\.([^}]+?)\s*\}\}")
NUMERIC_TYPES = frozenset({"integer", "score", "float", "currency", "percent"})
DELIVERY_TIMEOUT = 30.0
BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@dataclass(frozen=True)
class WebhookDefinition:
    """Admin > Webhooks > New Webhook."""

    name: str
    url: str
    request_type: Literal["GET", "POST", "PUT", "PATCH", "DELETE"] = "POST"
    template: str = ""
    token_encoding: Literal["json", "form"] = "json"
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class TriggerCampaign:
    """A trigger campaign whose flow is one Call Webhook step."""

    webhook: WebhookDefinition
    trigger: Literal["Data Value Changes", "Lead is Created"] = "Data Value Changes"
    attributes: frozenset[str] = frozenset()  # Data Value Changes on these REST field names; empty: any
    source_is_not: frozenset[str] = frozenset()  # constraint on the activity's Source

    def fires_on(self, trigger: str, field_names: set[str], source: str) -> bool:
        if trigger != self.trigger or source in self.source_is_not:
            return False
        return trigger != "Data Value Changes" or not self.attributes or bool(self.attributes & field_names)


@dataclass(frozen=True)
class Delivery:
    """One call made: what was sent and how it ended (status None: no response, see error)."""

    webhook: str
    lead_id: int
    method: str
    url: str
    headers: dict[str, str]
    body: str
    status: int | None
    error: str | None


@dataclass(frozen=True)
class FieldInfo:
    """What token rendering needs to know about a lead field."""

    name: str
    display_name: str
    data_type: str


def render(text: str, lead: Mapping[str, Any], fields: list[FieldInfo], encoding: str | None) -> str:
    """Replace `{{lead.X}}` tokens: raw (URL, headers), JSON-encoded or form-encoded (body)."""
    by_name = {}
    for f in fields:
        by_name[f.name.lower()] = f
        by_name[f.display_name.lower()] = f

    def value(match: re.Match[str]) -> str:
        info = by_name.get(match.group(1).lower())
        raw = lead.get(info.name) if info else None
        if encoding == "json":
            return _json_token(raw, info.data_type if info else "string")
        text_value = "" if raw is None else (str(raw).lower() if isinstance(raw, bool) else str(raw))
        return quote_plus(text_value) if encoding == "form" else text_value

    return TOKEN_RE.sub(value, text)


def _json_token(raw: Any, data_type: str) -> str:
    if raw is None or raw == "":
        return "null"
    if data_type == "boolean":
        return "true" if str(raw).lower() in {"true", "1"} else "false"
    if data_type in NUMERIC_TYPES:
        try:
            number = float(raw)
        except (TypeError, ValueError):
            return json.dumps(str(raw))
        return str(int(number)) if number.is_integer() else repr(number)
    return json.dumps(str(raw))


class WebhookSender:
    """One daemon thread that makes the calls in order; `on_done` hears every outcome."""

    def __init__(self, on_done: Callable[[Delivery], None], timeout: float = DELIVERY_TIMEOUT) -> None:
        self._on_done = on_done
        self._timeout = timeout
        self._queue: queue.Queue[tuple[WebhookDefinition, int, str, dict[str, str], str] | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()

    def send(self, webhook: WebhookDefinition, lead: Mapping[str, Any], fields: list[FieldInfo]) -> None:
        """Render now (the lead as the trigger saw it) and queue the call."""
        encoding = "form" if webhook.token_encoding == "form" else "json"
        headers = {"Content-Type": "application/json" if encoding == "json"
                   else "application/x-www-form-urlencoded"}
        headers.update({k: render(v, lead, fields, None) for k, v in webhook.headers.items()})
        body = render(webhook.template, lead, fields, encoding) if webhook.request_type in BODY_METHODS else ""
        url = render(webhook.url, lead, fields, None)
        with self._start_lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="marketo-webhooks", daemon=True)
                self._thread.start()
        self._queue.put((webhook, int(lead["id"]), url, headers, body))

    def stop(self) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout=self._timeout + 5)

    def _run(self) -> None:
        with httpx.Client(timeout=self._timeout) as http:
            while (job := self._queue.get()) is not None:
                webhook, lead_id, url, headers, body = job
                status, error = None, None
                try:
                    response = http.request(webhook.request_type, url, headers=headers,
                                            content=body.encode() if body else None)
                    status = response.status_code
                    if not response.is_success:
                        error = response.reason_phrase or f"HTTP {status}"
                except httpx.HTTPError as exc:
                    error = type(exc).__name__
                self._on_done(Delivery(webhook.name, lead_id, webhook.request_type, url, headers, body,
                                       status, error))
