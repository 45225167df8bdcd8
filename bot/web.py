"""The HTTP front: Bolt behind Starlette/uvicorn, with a guard in front of Bolt.

`POST /slack/events` — the body is read as a stream and never past `MAX_BODY_BYTES` (a request
whose `Content-Length` says more is refused before any of it is read); the guard then verifies
signature, freshness and shape before Bolt sees the body (Bolt would answer a garbage body with
a 500); Bolt's dispatch runs on a worker thread, so the event loop keeps accepting other users'
requests. The endpoint never answers 5xx.
`GET /healthz` reports Redis reachability; `GET /metrics` is Prometheus' exposition (`bot.metrics`).
"""

from __future__ import annotations

import logging
import time

from pydantic import BaseModel
from slack_bolt import App
from slack_bolt.adapter.starlette.handler import to_bolt_request, to_starlette_response
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from bot import metrics
from bot.container import Container
from bot.slack_payloads import Rejected, SlashCommand, guard_request

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 1_000_000


def request_kind(payload: BaseModel) -> str:
    """The `kind` label of a request: `command`, or the payload's own type (`block_actions`,
    `view_submission`, `block_suggestion`, `event_callback` ...)."""
    if isinstance(payload, SlashCommand):
        return "command"
    return str(getattr(payload, "type", "") or "unknown")


def _counted(kind: str, outcome: str, started: float) -> None:
    metrics.SLACK_REQUESTS.labels(kind, outcome).inc()
    metrics.SLACK_ACK_SECONDS.labels(kind).observe(time.perf_counter() - started)


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
    gauges = metrics.SyncGauges(container.queue, container.marketo_limiter(), container.settings.MARKETO_DAILY_QUOTA,
                                container.store.incremental)

    async def slack_events(request: Request) -> Response:
        started = time.perf_counter()
        try:
            body = await read_body(request, MAX_BODY_BYTES)
            kind = request_kind(guard_request(body, {k.lower(): v for k, v in request.headers.items()},
                                              signing_secret))
        except Rejected as rejected:
            _counted("rejected", "rejected", started)
            # After a 413 the rest of the body is still on its way: closing the connection stops the
            # server from reading (and discarding) it all.
            headers = {"Connection": "close"} if rejected.status == 413 else None
            return PlainTextResponse(rejected.reason, status_code=rejected.status, headers=headers)
        try:
            bolt_response = await run_in_threadpool(bolt.dispatch, to_bolt_request(request, body))
        except Exception:  # noqa: BLE001 - never a 5xx to Slack
            log.exception("dispatch failed")
            _counted(kind, "error", started)
            return Response(status_code=200)
        if bolt_response.status >= 500:
            log.error("bolt answered %s", bolt_response.status)
            _counted(kind, "error", started)
            return Response(status_code=200)
        response = to_starlette_response(bolt_response)
        _counted(kind, "ok", started)
        return response

    async def healthz(_: Request) -> Response:
        try:
            await run_in_threadpool(container.store.ping)
        except Exception as exc:  # noqa: BLE001
            return JSONResponse({"ok": False, "redis": f"unreachable: {type(exc).__name__}"}, status_code=503)
        return JSONResponse({"ok": True, "redis": "ok"})

    async def metrics_endpoint(_: Request) -> Response:
        body, content_type = await run_in_threadpool(metrics.exposition, gauges)
        return Response(body, headers={"Content-Type": content_type})

    return Starlette(
        routes=[
            Route("/slack/events", slack_events, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/metrics", metrics_endpoint, methods=["GET"]),
        ]
    )
