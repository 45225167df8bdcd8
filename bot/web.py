"""The HTTP front: Bolt behind Starlette/uvicorn, with a guard in front of Bolt.

`POST /slack/events` — the body is read as a stream and never past `MAX_BODY_BYTES` (a request
whose `Content-Length` says more is refused before any of it is read); the guard then verifies
signature, freshness and shape before Bolt sees the body (Bolt would answer a garbage body with
a 500); Bolt's dispatch runs on a worker thread, so the event loop keeps accepting other users'
requests. The endpoint never answers 5xx.
`GET /livez` answers 200 while the process serves (liveness: a Redis outage must not restart every
web process); `GET /readyz` answers 200 when Redis answers within `READY_TIMEOUT_SECONDS` and the
settings `serve` needs are valid, else 503 with the reason in JSON (readiness: take it out of the
load balancer); `GET /healthz` is the older name of `/readyz`, kept for existing load balancers.
`GET /metrics` is Prometheus text.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter

from pydantic import BaseModel
from slack_bolt import App
from slack_bolt.adapter.starlette.handler import to_bolt_request, to_starlette_response
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from bot.config import WEB_REQUIRED, MissingSetting, Settings
from bot.container import Container
from bot.slack_payloads import Rejected, guard_request
from bot.store import Health, RedisError

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 1_000_000
READY_TIMEOUT_SECONDS = 2.0


class Readiness(BaseModel):
    """The body of `/readyz`: each part "ok" or why not (never a setting's value)."""

    ok: bool
    redis: str
    settings: str


def readiness(settings: Settings, health: Health) -> Readiness:
    try:
        settings.require(WEB_REQUIRED)
        settings_state = "ok"
    except MissingSetting as missing:
        settings_state = str(missing)
    try:
        health.ping()
        redis_state = "ok"
    except RedisError as exc:
        redis_state = f"unreachable: {type(exc).__name__}"
    return Readiness(ok=settings_state == redis_state == "ok", redis=redis_state, settings=settings_state)


class Metrics:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: Counter[str] = Counter()
        self.ack_seconds_total = 0.0

    def count(self, outcome: str, seconds: float = 0.0) -> None:
        with self._lock:
            self.requests[outcome] += 1
            self.ack_seconds_total += seconds

    def render(self) -> str:
        with self._lock:
            lines = ["# TYPE connect_dynamics_requests_total counter"]
            lines += [f'connect_dynamics_requests_total{{outcome="{k}"}} {v}' for k, v in sorted(self.requests.items())]
            lines += ["# TYPE connect_dynamics_ack_seconds_total counter",
                      f"connect_dynamics_ack_seconds_total {self.ack_seconds_total:.6f}"]
        return "\n".join(lines) + "\n"


async def read_body(request: Request, limit: int) -> bytes:
    """The body, streamed and never held past `limit` bytes: Rejected(413) beyond it.

    A declared `Content-Length` over the limit is refused before reading; without one (chunked) or
    with a false one, the read stops as soon as the limit is passed."""
    declared = request.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and int(declared) > limit:
        raise Rejected(413, "request too large")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise Rejected(413, "request too large")
    return bytes(body)


def create_web_app(bolt: App, container: Container) -> Starlette:
    signing_secret = container.settings.secret("SLACK_SIGNING_SECRET")
    metrics = Metrics()
    health = Health.connect(container.settings.REDIS_URL or "", container.settings.REDIS_KEY_PREFIX,
                            timeout=READY_TIMEOUT_SECONDS)

    async def slack_events(request: Request) -> Response:
        started = time.perf_counter()
        try:
            body = await read_body(request, MAX_BODY_BYTES)
            guard_request(body, {k.lower(): v for k, v in request.headers.items()}, signing_secret)
        except Rejected as rejected:
            metrics.count("rejected")
            # After a 413 the rest of the body is still on its way: closing the connection stops the
            # server from reading (and discarding) it all.
            headers = {"Connection": "close"} if rejected.status == 413 else None
            return PlainTextResponse(rejected.reason, status_code=rejected.status, headers=headers)
        try:
            bolt_response = await run_in_threadpool(bolt.dispatch, to_bolt_request(request, body))
        except Exception:  # noqa: BLE001 - never a 5xx to Slack
            log.exception("dispatch failed")
            metrics.count("error")
            return Response(status_code=200)
        if bolt_response.status >= 500:
            log.error("bolt answered %s", bolt_response.status)
            metrics.count("error")
            return Response(status_code=200)
        metrics.count("ok", time.perf_counter() - started)
        return to_starlette_response(bolt_response)

    async def livez(_: Request) -> Response:
        return JSONResponse({"ok": True})

    async def readyz(_: Request) -> Response:
        report = await run_in_threadpool(readiness, container.settings, health)
        return JSONResponse(report.model_dump(), status_code=200 if report.ok else 503)

    async def metrics_endpoint(_: Request) -> Response:
        return PlainTextResponse(metrics.render())

    return Starlette(
        routes=[
            Route("/slack/events", slack_events, methods=["POST"]),
            Route("/livez", livez, methods=["GET"]),
            Route("/readyz", readyz, methods=["GET"]),
            Route("/healthz", readyz, methods=["GET"]),
            Route("/metrics", metrics_endpoint, methods=["GET"]),
        ]
    )
