"""The HTTP front: Bolt behind Starlette/uvicorn, with a guard in front of Bolt.

`POST /slack/events` — the body is read as a stream and never past `MAX_BODY_BYTES` (a request
whose `Content-Length` says more is refused before any of it is read); the guard then verifies
signature, freshness and shape before Bolt sees the body (Bolt would answer a garbage body with
a 500), and Bolt gets what the guard parsed (the body is parsed and verified once); Bolt's
dispatch runs on a small pool of its own (`ACK_THREADS`), so the event loop keeps accepting other
users' requests. The endpoint never answers 5xx.
`GET /livez` answers 200 while the process serves (liveness: a Redis outage must not restart every
web process); `GET /readyz` answers 200 when Redis answers within `READY_TIMEOUT_SECONDS` and the
settings `serve` needs are valid, else 503 with the reason in JSON (readiness: take it out of the
load balancer); `GET /healthz` is the older name of `/readyz`, kept for existing load balancers.
`GET /metrics` is Prometheus' exposition (`bot.metrics`).
`POST /marketo/webhook` and `POST /dynamics/webhook` (`bot.webhooks_in`) are called by Marketo and
Dataverse, not Slack: they skip the guard, check their own token or key, cap their bodies, enqueue
and answer at once, and never answer 5xx either (an internal failure is a 429: try later).
`GET /slack/install` and `GET /slack/oauth_redirect` (only with Slack OAuth on) are Bolt's OAuth
flow: a browser, not Slack, calls them, so they carry no Slack signature and skip the guard; the
flow checks its own one-time state instead.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor

from pydantic import BaseModel
from slack_bolt import App, BoltRequest
from slack_bolt.adapter.starlette.handler import to_bolt_request, to_starlette_response
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from bot import metrics
from bot.app import INSTALL_PATH, REDIRECT_PATH
from bot.config import WEB_REQUIRED, MissingSetting, Settings
from bot.container import Container
from bot.slack_payloads import GUARDED_PAYLOAD, Guarded, Rejected, SlashCommand, guard_request
from bot.store import Health, RedisError
from bot.sync.live import DYNAMICS_WEBHOOK_PATH, MARKETO_WEBHOOK_PATH
from bot.webhooks_in import DATAVERSE_MAX_BODY, MARKETO_MAX_BODY, Answer, WebhookIntake, rejected

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 1_000_000
# Bolt's dispatch runs on a pool of its own: an ack is a fraction of a millisecond of CPU, so a few
# threads keep up with any burst, and fewer threads contend less for the interpreter lock than
# anyio's default 40. A handler that reads Redis before its ack holds one for that read only.
ACK_THREADS = 8
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


def bolt_request(guarded: Guarded, headers: dict[str, str], query: str) -> BoltRequest:
    """The request as Bolt takes it, without parsing or verifying it again.

    Bolt parses the body itself only from text, and checks the signature itself only in "http"
    mode; "socket_mode" is its way to take a body already parsed from an authenticated source, and
    the guard is that (signature and freshness checked over the raw bytes before any parsing). The
    listeners find the guard's model under `GUARDED_PAYLOAD`."""
    return BoltRequest(body=guarded.body, query=query, headers=headers,  # type: ignore[arg-type]
                       context={GUARDED_PAYLOAD: guarded.payload}, mode="socket_mode")


def create_web_app(bolt: App, container: Container) -> Starlette:
    signing_secret = container.settings.secret("SLACK_SIGNING_SECRET")
    gauges = metrics.SyncGauges(container.queue, container.marketo_limiter(), container.settings.MARKETO_DAILY_QUOTA,
                                container.store.incremental)
    health = container.probe_health(READY_TIMEOUT_SECONDS)
    ack_pool = ThreadPoolExecutor(max_workers=ACK_THREADS, thread_name_prefix="ack")

    async def slack_events(request: Request) -> Response:
        """Counted by the ack gate from arrival to ack: after-ack work waits for a burst's acks."""
        with container.ack_gate.acking():
            return await acked(request)

    async def acked(request: Request) -> Response:
        started = time.perf_counter()
        headers = {k.lower(): v for k, v in request.headers.items()}
        try:
            guarded = guard_request(await read_body(request, MAX_BODY_BYTES), headers, signing_secret)
        except Rejected as rejected:
            _counted("rejected", "rejected", started)
            # After a 413 the rest of the body is still on its way: closing the connection stops the
            # server from reading (and discarding) it all.
            closing = {"Connection": "close"} if rejected.status == 413 else None
            return PlainTextResponse(rejected.reason, status_code=rejected.status, headers=closing)
        kind = request_kind(guarded.payload)
        try:
            # The event loop's own executor call: measured cheaper per request than anyio's
            # `run_in_threadpool` (bench_ack), and the web front sets no context for it to carry.
            bolt_response = await asyncio.get_running_loop().run_in_executor(
                ack_pool, bolt.dispatch, bolt_request(guarded, headers, request.url.query))
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

    async def livez(_: Request) -> Response:
        return JSONResponse({"ok": True})

    async def readyz(_: Request) -> Response:
        report = await run_in_threadpool(readiness, container.settings, health)
        return JSONResponse(report.model_dump(), status_code=200 if report.ok else 503)

    async def metrics_endpoint(_: Request) -> Response:
        body, content_type = await run_in_threadpool(metrics.exposition, gauges)
        return Response(body, headers={"Content-Type": content_type})

    intake = WebhookIntake(container.store, container.queue, container.settings)

    async def marketo_webhook(request: Request) -> Response:
        refusal = intake.marketo_refusal({k.lower(): v for k, v in request.headers.items()})
        if refusal is not None:
            return _webhook_answer("marketo", refusal)
        return await _webhook(request, "marketo", MARKETO_MAX_BODY,
                              lambda _headers, query, body: intake.marketo(query, body))

    async def dynamics_webhook(request: Request) -> Response:
        return await _webhook(request, "dynamics", DATAVERSE_MAX_BODY, intake.dynamics)

    routes = [
        Route("/slack/events", slack_events, methods=["POST"]),
        Route(MARKETO_WEBHOOK_PATH, marketo_webhook, methods=["POST"]),
        Route(DYNAMICS_WEBHOOK_PATH, dynamics_webhook, methods=["POST"]),
        Route("/livez", livez, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/healthz", readyz, methods=["GET"]),
        Route("/metrics", metrics_endpoint, methods=["GET"]),
    ]
    routes += oauth_routes(bolt)
    return Starlette(routes=routes)


WebhookHandler = Callable[[Mapping[str, str], Mapping[str, str], bytes], Answer]


async def _webhook(request: Request, source: str, limit: int, handle: WebhookHandler) -> Response:
    """Read the capped body, let `handle` check it and enqueue (on a worker thread: it calls Redis)."""
    try:
        body = await read_body(request, limit)
        headers = {k.lower(): v for k, v in request.headers.items()}
        answer = await run_in_threadpool(handle, headers, dict(request.query_params), body)
    except Rejected as too_large:
        answer = rejected(too_large.status, too_large.reason)
    except Exception:  # noqa: BLE001 - never a 5xx: Redis down, the queue refused ...
        log.exception("%s webhook failed", source)
        answer = Answer(429, "error", {"error": "try again later"})
    return _webhook_answer(source, answer)


def _webhook_answer(source: str, answer: Answer) -> Response:
    metrics.WEBHOOKS.labels(source, answer.outcome).inc()
    headers = {"Connection": "close"} if answer.status == 413 else None
    return JSONResponse(answer.body, status_code=answer.status, headers=headers)


def oauth_routes(bolt: App) -> list[Route]:
    """The install page and the redirect back from Slack, when the app installs through OAuth."""
    flow = bolt.oauth_flow
    if flow is None:
        return []

    async def install(request: Request) -> Response:
        return to_starlette_response(await run_in_threadpool(flow.handle_installation, to_bolt_request(request, b"")))

    async def oauth_redirect(request: Request) -> Response:
        return to_starlette_response(await run_in_threadpool(flow.handle_callback, to_bolt_request(request, b"")))

    return [Route(INSTALL_PATH, install, methods=["GET"]), Route(REDIRECT_PATH, oauth_redirect, methods=["GET"])]
