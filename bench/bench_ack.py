"""Ack latency of `connect-dynamics serve` under a burst of simultaneous users (issues 2 and 16).

    .venv/bin/python bench/bench_ack.py            # 50 users; BENCH_ACK_USERS=... to change

Starts the three emulators and `connect-dynamics serve` as a subprocess (real Redis at REDIS_URL,
a unique key prefix), then drives it from a separate load-generator process (so the generator
does not share the server's GIL) in three bursts, every request of a burst sent at once:
- `commands`: `/connect-dynamics` from N different admins (each must get its Step 1 modal);
- `clicks`: N presses of a stale button (must be acked 200 and answered "no longer valid");
- `mixed`: both at once (2N requests).
Each burst runs `BENCH_ACK_ROUNDS` times (default 3). Requests are built and signed by
`SlackDriver` beforehand and sent over plain sockets, one connection each, so the timing is the
server's, not the client's. Trigger ids come from the Slack emulator just before each burst and
live its 3 s, as Slack's do, so a modal opened too late fails. Prints `name: value` lines: p50 /
p95 / p99 / max ack latency, overall and per burst, each percentile also as a ratio to the 100 ms
goal and to Slack's 3 s limit; non-200 answers, modals opened; the server process's CPU per request
(everything it did for the burst, after-ack work included), all for one web process
(WEB_CONCURRENCY=1, the default); then, on a machine with several cores, the p99 with one web
process per core. The server's first requests (a warm-up) are reported on their own as
`ack_cold_first_*`.

Then the ack path alone, in this process, one request at a time (after-ack work dropped): its
CPU per request through the whole web app (Starlette, guard, thread hand-off, Bolt, router) and
through guard + Bolt alone; when the goal is missed, the top of its profile, the
machine's load, and why the burst's latency is a multiple of that CPU.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import functools
import io
import json
import os
import pstats
import selectors
import socket
import subprocess
import sys
import time
from collections import defaultdict, deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx  # noqa: E402
import psutil  # noqa: E402
import redis  # noqa: E402

from bench.common import REDIS_URL, delete_prefix, percentile, report, run_size, unique_prefix  # noqa: E402
from sandbox.driver import SlackDriver  # noqa: E402
from sandbox.polling import wait_for  # noqa: E402
from sandbox.slack import SlackEmulator, UserProfile  # noqa: E402
from sandbox.stack import SIGNING_SECRET, build_stack  # noqa: E402
from tests.support.processes import WebProcess  # noqa: E402

GOAL_SECONDS = 0.100
SLACK_LIMIT_SECONDS = 3.0
BURSTS = ("commands", "clicks", "mixed")
STALE_ACTION = "cd_bench_stale_button"  # an action id no version of the bot registers
CHANNEL = "C0BENCH01"
WARMUP_USER = "U0WARMUP1"


# ------------------------------------------------------------------------------ load generator

class Preissued:
    """Stands in for the Slack emulator inside the load generator's `SlackDriver`: the trigger
    ids and response URLs were issued by the real emulator (in the parent) just before the burst."""

    def __init__(self, issued: list[dict[str, str]]) -> None:
        self._triggers: dict[str, deque[str]] = defaultdict(deque)
        self._response_urls: dict[str, deque[str]] = defaultdict(deque)
        for request in issued:
            self._triggers[request["user"]].append(request["trigger_id"])
            self._response_urls[request["user"]].append(request["response_url"])

    def new_trigger_id(self, user_id: str) -> str:
        return self._triggers[user_id].popleft()

    def new_response_url(self, user_id: str, channel: str) -> str:
        return self._response_urls[user_id].popleft()

    def user_profile(self, user_id: str) -> UserProfile:
        return UserProfile(name=f"user-{user_id.lower()}", email=f"{user_id.lower()}@example.com")


def prepare(url: str, requests: list[dict[str, str]]) -> list[httpx.Request]:
    """Build and sign every request with `SlackDriver` up front (through a transport that only
    records), so the burst itself spends no CPU on payloads and signatures."""
    prepared: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        request.read()
        prepared.append(request)
        return httpx.Response(200)

    with SlackDriver(url, SIGNING_SECRET, emulator=Preissued(requests),  # type: ignore[arg-type]
                     transport=httpx.MockTransport(record)) as driver:
        for request in requests:
            if request["kind"] == "command":
                driver.command(request["user"], channel=CHANNEL)
            else:
                driver.block_action(request["user"], STALE_ACTION, value="old", channel=CHANNEL)
    return prepared


def wire_bytes(request: httpx.Request) -> bytes:
    """The request exactly as HTTP/1.1 puts it on the wire (httpx set Host and Content-Length)."""
    head = [f"{request.method} {request.url.raw_path.decode()} HTTP/1.1"]
    head += [f"{name.decode()}: {value.decode()}" for name, value in request.headers.raw]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + request.content


def complete(response: bytes) -> int | None:
    """The status code once `response` holds a whole HTTP response (headers + Content-Length body)."""
    head, found, body = response.partition(b"\r\n\r\n")
    if not found:
        return None
    lines = head.decode("latin-1").split("\r\n")
    length = next((int(line.split(":", 1)[1]) for line in lines[1:] if line.lower().startswith("content-length:")), 0)
    return int(lines[0].split()[1]) if len(body) >= length else None


def burst(url: str, requests: list[dict[str, str]]) -> list[dict[str, Any]]:
    """Open one connection per request, then send every request at once and time each answer.

    Plain sockets and one selector: the generator's own work per request is a send and a few
    reads, so what is timed is the server's ack, not the client's bookkeeping."""
    payloads = [wire_bytes(request) for request in prepare(url, requests)]
    address = (httpx.URL(url).host, httpx.URL(url).port)
    sockets = [socket.create_connection(address) for _ in payloads]
    selector = selectors.DefaultSelector()
    pending: dict[socket.socket, tuple[int, float, bytearray]] = {}
    results: list[dict[str, Any]] = [{} for _ in payloads]
    try:
        for index, (sock, payload) in enumerate(zip(sockets, payloads, strict=True)):
            pending[sock] = (index, time.perf_counter(), bytearray())
            sock.sendall(payload)
            sock.setblocking(False)
            selector.register(sock, selectors.EVENT_READ)
        deadline = time.monotonic() + 60
        while pending and time.monotonic() < deadline:
            for key, _ in selector.select(timeout=1):
                sock = key.fileobj
                index, started, received = pending[sock]
                chunk = sock.recv(65536)
                received += chunk
                status = complete(bytes(received)) if chunk else 0  # 0: closed with no answer
                if status is not None:
                    results[index] = {"kind": requests[index]["kind"], "status": status,
                                      "seconds": time.perf_counter() - started}
                    selector.unregister(sock)
                    del pending[sock]
        for index, started, _ in pending.values():
            results[index] = {"kind": requests[index]["kind"], "status": 0, "seconds": time.perf_counter() - started}
    finally:
        selector.close()
        for sock in sockets:
            sock.close()
    return results


def load_generator(url: str) -> None:
    """One JSON list of requests per stdin line in, one JSON list of results per stdout line out."""
    print("ready", flush=True)
    for line in sys.stdin:
        print(json.dumps(burst(url, json.loads(line))), flush=True)


# ------------------------------------------------------------------------------ measuring side

class Generator:
    def __init__(self, url: str) -> None:
        self.process = subprocess.Popen([sys.executable, __file__, "--load", url],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        if self.process.stdout.readline().strip() != "ready":
            raise RuntimeError("the load generator did not start")

    def run(self, slack: SlackEmulator, requests: list[tuple[str, str]]) -> list[dict[str, Any]]:
        """Issue fresh trigger ids for `requests` (kind, user), fire them, return the results."""
        slack.reset()
        issued = [{"kind": kind, "user": user, "trigger_id": slack.new_trigger_id(user),
                   "response_url": slack.new_response_url(user, CHANNEL)} for kind, user in requests]
        self.process.stdin.write(json.dumps(issued) + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError("the load generator died")
        return json.loads(line)

    def stop(self) -> None:
        self.process.stdin.close()
        self.process.wait(timeout=30)


def answered(slack: SlackEmulator, requests: list[tuple[str, str]], timeout: float = 15.0) -> dict[str, int]:
    """Wait until every command has its views.open and every click its ephemeral (or time out)."""
    commands = sum(kind == "command" for kind, _ in requests)
    clicks = len(requests) - commands

    def counts() -> dict[str, int]:
        opened = [c for c in slack.calls("views.open") if c.ok]
        told = [c for c in slack.calls("chat.postEphemeral") if c.ok]
        return {"modals": len(opened), "ephemerals": len(told),
                "failed_slack_calls": sum(not c.ok for c in slack.calls())}

    def done() -> bool:
        seen = counts()
        return seen["modals"] >= commands and seen["ephemerals"] >= clicks

    with contextlib.suppress(TimeoutError):  # reported as fewer modals / ephemerals than requests
        wait_for(done, "the bot's answers to the burst", timeout)
    return counts()


@dataclass
class Measurement:
    cold: list[dict[str, Any]]  # the first requests the server ever saw
    results: dict[str, list[dict[str, Any]]]  # per burst, every round's requests
    outcomes: dict[str, dict[str, int]]  # per burst: what the Slack emulator received (worst round)
    cpu_seconds: dict[str, float]  # per burst: the server's CPU over its rounds, after-ack work included

    def seconds(self, burst_name: str | None = None) -> list[float]:
        return [r["seconds"] for name, burst_results in self.results.items() if burst_name in (None, name)
                for r in burst_results]

    def non_200(self) -> int:
        return sum(r["status"] != 200 for burst_results in self.results.values() for r in burst_results)


def server_cpu_seconds(pid: int) -> float:
    """User + system CPU of the server and its worker processes so far."""
    server = psutil.Process(pid)
    return sum(sum(p.cpu_times()[:2]) for p in [server, *server.children(recursive=True)])


def measure(users: list[str], web_concurrency: int, rounds: int) -> Measurement:
    """One server (`WEB_CONCURRENCY` processes) against fresh emulators, warmed, then the bursts."""
    bursts = {
        "commands": [("command", user) for user in users],
        "clicks": [("click", user) for user in users],
        "mixed": [(kind, user) for user in users for kind in ("command", "click")],
    }
    warmup = [("command", WARMUP_USER), ("click", WARMUP_USER)] * web_concurrency
    prefix = unique_prefix("ack")
    with build_stack(leads=20, contacts=10, accounts=5) as stack:
        env = stack.env(REDIS_URL=REDIS_URL, REDIS_KEY_PREFIX=prefix, WEB_CONCURRENCY=web_concurrency,
                        ADMIN_USER_IDS=",".join([WARMUP_USER, *users]))
        web = WebProcess(env).start()
        generator = None
        try:
            generator = Generator(web.url)
            cold = generator.run(stack.slack, warmup)
            answered(stack.slack, warmup)
            results: dict[str, list[dict[str, Any]]] = defaultdict(list)
            outcomes: dict[str, dict[str, int]] = {}
            cpu: dict[str, float] = defaultdict(float)
            for _ in range(rounds):
                for name, requests in bursts.items():
                    before = server_cpu_seconds(web.process.pid)
                    results[name] += generator.run(stack.slack, requests)
                    seen = answered(stack.slack, requests)
                    cpu[name] += server_cpu_seconds(web.process.pid) - before
                    worst = outcomes.get(name)
                    if worst is None or (seen["modals"], seen["ephemerals"]) < (worst["modals"], worst["ephemerals"]):
                        outcomes[name] = seen
        finally:
            if generator is not None:
                generator.stop()
            web.stop()
            delete_prefix(redis.Redis.from_url(REDIS_URL), prefix)
    return Measurement(cold, dict(results), outcomes, dict(cpu))


# ------------------------------------------------------------------------------ the ack path alone

class Dropped:
    """Stands in for the after-ack pool: the work is not run, so the CPU measured is the ack's."""

    def submit(self, fn: Any, *args: Any, **kwargs: Any) -> None:
        pass


@dataclass
class AckPathCost:
    web_app_ms: float  # per request through the Starlette app: guard, thread hand-off, Bolt, router
    guard_and_bolt_ms: float  # per request through `guard_request` + `bolt.dispatch` on this thread
    profile: str  # the top of cProfile's listing over guard + Bolt


def asgi_post(app: Any, request: httpx.Request) -> Any:
    """POST `request` to the ASGI `app` as uvicorn would hand it over; the coroutine gives the status."""
    path = request.url.raw_path
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": path.decode(), "raw_path": path, "query_string": b"", "root_path": "",
             "headers": [(name.lower(), value) for name, value in request.headers.raw],
             "server": ("127.0.0.1", 80), "client": ("127.0.0.1", 1)}
    messages = [{"type": "http.request", "body": request.content, "more_body": False}]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async def call() -> int:
        await app(scope, receive, send)
        return sent[0]["status"]

    return call()


def ack_path_cost(stack_env: dict[str, str], users: list[str], repeat: int = 3) -> AckPathCost:
    """CPU per ack of the real web app (Redis real, after-ack work dropped), best of `repeat` passes."""
    from bot.app import build_app
    from bot.config import Settings
    from bot.container import Container
    from bot.slack_payloads import guard_request
    from bot.web import bolt_request, create_web_app

    class AckOnly(Container):
        @functools.cached_property
        def background(self) -> Dropped:  # type: ignore[override]
            return Dropped()

    with mock.patch.dict(os.environ, stack_env):
        container = AckOnly(Settings())
    bolt = build_app(container)
    app = create_web_app(bolt, container)
    secret = container.settings.secret("SLACK_SIGNING_SECRET")
    issued = [{"kind": kind, "user": user, "trigger_id": f"bench-{kind}-{user}", "response_url": "http://127.0.0.1:9/r"}
              for user in users for kind in ("command", "click")]
    requests = prepare("http://127.0.0.1:9", issued)
    signed = [({k.decode().lower(): v.decode() for k, v in r.headers.raw}, r.content) for r in requests]

    def guard_and_bolt() -> None:
        for headers, body in signed:
            if bolt.dispatch(bolt_request(guard_request(body, headers, secret), headers, "")).status != 200:
                raise RuntimeError("the ack path did not answer 200")

    async def through_web_app() -> None:
        for request in requests:
            if await asgi_post(app, request) != 200:
                raise RuntimeError("the web app did not answer 200")

    def per_request_ms(run: Any) -> float:
        best = float("inf")
        for _ in range(repeat):
            started = time.process_time()
            run()
            best = min(best, time.process_time() - started)
        return best / len(requests) * 1000

    try:
        guard_and_bolt()  # warm: the roles are read once, the imports done
        web_app_ms = per_request_ms(lambda: asyncio.run(through_web_app()))
        guard_and_bolt_ms = per_request_ms(guard_and_bolt)
        profiler = cProfile.Profile()
        profiler.runcall(guard_and_bolt)
        listing = io.StringIO()
        pstats.Stats(profiler, stream=listing).sort_stats("tottime").print_stats(12)
    finally:
        container.redis.close()
    return AckPathCost(web_app_ms, guard_and_bolt_ms, listing.getvalue())


def profile_top(listing: str) -> list[str]:
    """The rows of a pstats listing: calls, own time, cumulative time, function."""
    rows = listing.splitlines()
    start = next((i for i, row in enumerate(rows) if row.strip().startswith("ncalls")), len(rows))
    return [" ".join(row.split()) for row in rows[start + 1:] if row.strip()]


def report_latency(name: str, seconds: list[float]) -> None:
    """p50 / p95 / p99 of `name`, each also as ratios to the goal and to Slack's limit, and the max."""
    suffix = f"_{name}" if name else ""
    for q in (50, 95, 99):
        value = percentile(seconds, q)
        report(f"ack_p{q}_ms{suffix}", value * 1000)
        report(f"ack_p{q}_ratio_to_goal{suffix}", value / GOAL_SECONDS)
        report(f"ack_p{q}_ratio_to_slack_limit{suffix}", value / SLACK_LIMIT_SECONDS)
    report(f"ack_max_ms{suffix}", max(seconds) * 1000)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--load", metavar="URL", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.load:
        load_generator(args.load)
        return
    users = [f"U0BENCH{i:03d}" for i in range(run_size("BENCH_ACK_USERS", 50, 50))]
    rounds = run_size("BENCH_ACK_ROUNDS", 3, 1)
    single = measure(users, 1, rounds)
    seconds = single.seconds()
    report("ack_users", len(users))
    report("ack_rounds", rounds)
    report("ack_requests", len(seconds))
    for result in single.cold:
        report(f"ack_cold_first_{result['kind']}_ms", result["seconds"] * 1000)
    report_latency("", seconds)
    for name in BURSTS:
        report_latency(name, single.seconds(name))
    report("ack_non_200", single.non_200())
    for name in ("commands", "mixed"):
        report(f"step1_modals_opened_{name}", f"{single.outcomes[name]['modals']} of {len(users)}")
    for name in ("clicks", "mixed"):
        report(f"stale_button_notes_{name}", f"{single.outcomes[name]['ephemerals']} of {len(users)}")
    report("slack_calls_failed", sum(o["failed_slack_calls"] for o in single.outcomes.values()))
    for name in BURSTS:
        report(f"server_cpu_ms_per_request_{name}", single.cpu_seconds[name] / len(single.seconds(name)) * 1000)

    with build_stack(leads=2, contacts=1, accounts=1) as stack:
        prefix = unique_prefix("ack-path")
        try:
            cost = ack_path_cost(stack.env(REDIS_URL=REDIS_URL, REDIS_KEY_PREFIX=prefix,
                                           ADMIN_USER_IDS=",".join(users)), users)
        finally:
            delete_prefix(redis.Redis.from_url(REDIS_URL), prefix)
    report("ack_cpu_ms_per_request_web_app", cost.web_app_ms)
    report("ack_cpu_ms_per_request_guard_and_bolt", cost.guard_and_bolt_ms)
    cores = os.cpu_count() or 1
    report("cpu_cores", cores)
    report("load_average_1m", os.getloadavg()[0])
    p99 = percentile(seconds, 99)
    if p99 >= GOAL_SECONDS:
        burst_cpu = 2 * len(users) * cost.web_app_ms
        report("ack_goal_missed_because",
               f"a mixed burst of {2 * len(users)} requests needs {burst_cpu:.0f} ms of the server's CPU for its acks "
               f"alone (one interpreter lock: acks run one at a time); the load generator, the three emulators and "
               f"the server share {cores} core(s) with a 1-minute load average of {os.getloadavg()[0]:.1f}, so the "
               f"server gets a fraction of one and the last ack of a burst waits for every ack before it")
        for rank, row in enumerate(profile_top(cost.profile), start=1):
            report(f"ack_profile_top_{rank:02d}", row)
    if cores > 1:  # the same bursts against one web process per core (uvicorn workers)
        multi = measure(users, cores, rounds)
        report(f"ack_p99_ms_web_concurrency_{cores}", percentile(multi.seconds(), 99) * 1000)
        report(f"ack_non_200_web_concurrency_{cores}", multi.non_200())
        report(f"step1_modals_opened_web_concurrency_{cores}",
               f"{min(multi.outcomes[n]['modals'] for n in ('commands', 'mixed'))} of {len(users)}")


if __name__ == "__main__":
    main()
