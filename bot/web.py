"""The HTTP front: Bolt behind Starlette/uvicorn, with a guard in front of Bolt.

`POST /slack/events` — the guard verifies signature, freshness and shape before Bolt sees the
body (Bolt would answer a garbage body with a 500); Bolt's dispatch then runs on a worker
thread, so the event loop keeps accepting other users' requests. The endpoint never answers 5xx.
`GET /healthz` reports Redis reachability; `GET /metrics` is Prometheus text.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter

from slack_bolt import App
from slack_bolt.adapter.starlette.handler import to_bolt_request, to_starlette_response
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from bot.runtime import Runtime
from bot.slack_payloads import Rejected, guard_request

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 1_000_000


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


def create_web_app(bolt: App, runtime: Runtime) -> Starlette:
    signing_secret = runtime.settings.secret("SLACK_SIGNING_SECRET")
    metrics = Metrics()

    async def slack_events(request: Request) -> Response:
        started = time.perf_counter()
        body = await request.body()
        if len(body) > MAX_BODY_BYTES:
            metrics.count("rejected")
            return PlainTextResponse("request too large", status_code=413)
        try:
            guard_request(body, {k.lower(): v for k, v in request.headers.items()}, signing_secret)
        except Rejected as rejected:
            metrics.count("rejected")
            return PlainTextResponse(rejected.reason, status_code=rejected.status)
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

    async def healthz(_: Request) -> Response:
        try:
            await run_in_threadpool(runtime.store.ping)
        except Exception as exc:  # noqa: BLE001
            return JSONResponse({"ok": False, "redis": f"unreachable: {type(exc).__name__}"}, status_code=503)
        return JSONResponse({"ok": True, "redis": "ok"})

    async def metrics_endpoint(_: Request) -> Response:
        return PlainTextResponse(metrics.render())

    return Starlette(
        routes=[
            Route("/slack/events", slack_events, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/metrics", metrics_endpoint, methods=["GET"]),
        ]
    )
