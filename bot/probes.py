"""`connect-dynamics probe web | worker | auto`: is this container's process healthy? Exit 0 or 1.

- `web` asks the local `serve` process's `GET /livez` (on `PORT`): the process answers.
- `worker` checks the heartbeat that the worker named `WORKER_NAME` (default: the host name, which
  is the container's or the pod's) writes every maintenance round; it expires after three rounds.
- `auto` reads the command of the container's first process (`/proc/1/cmdline`) and runs the probe
  that fits it, so one image-level `HEALTHCHECK` serves every process; `socket` has nothing to ask
  (it serves no HTTP) and passes while it runs.
"""

from __future__ import annotations

from pathlib import Path

import httpx
from pydantic import ValidationError

from bot.config import Settings
from bot.store import Health, RedisError

PROBE_TIMEOUT_SECONDS = 3.0
PROCESSES = ("serve", "worker", "socket")
FIRST_PROCESS = Path("/proc/1/cmdline")


def probe_web(settings: Settings) -> tuple[bool, str]:
    url = f"http://127.0.0.1:{settings.PORT}/livez"
    try:
        response = httpx.get(url, timeout=PROBE_TIMEOUT_SECONDS)
    except httpx.HTTPError as exc:
        return False, f"{url} did not answer ({type(exc).__name__})"
    return response.status_code == 200, f"{url} answered {response.status_code}"


def probe_worker(settings: Settings) -> tuple[bool, str]:
    if not settings.REDIS_URL:
        return False, "REDIS_URL is not set"
    health = Health.connect(settings.REDIS_URL, settings.REDIS_KEY_PREFIX, timeout=PROBE_TIMEOUT_SECONDS)
    try:
        beating = health.beating(settings.WORKER_NAME)
    except RedisError as exc:
        return False, f"Redis did not answer ({type(exc).__name__})"
    finally:
        health.close()
    state = "fresh" if beating else "missing or expired"
    return beating, f"the heartbeat of worker {settings.WORKER_NAME!r} is {state}"


def process_of(argv: list[str]) -> str | None:
    """Which of `PROCESSES` a command line runs (`connect-dynamics serve`, `python -m bot.cli worker`,
    behind an init such as tini), or None."""
    for before, word in zip(argv, argv[1:], strict=False):
        if word in PROCESSES and (before.endswith("connect-dynamics") or before == "bot.cli"):
            return word
    return None


def first_process() -> str | None:
    try:
        return process_of(FIRST_PROCESS.read_bytes().decode(errors="replace").split("\0"))
    except OSError:
        return None


def probe(target: str) -> tuple[bool, str]:
    try:
        settings = Settings()
    except ValidationError as exc:
        return False, f"invalid settings: {exc.errors()[0]['loc']}"
    if target == "auto":
        process = first_process()
        if process is None:
            return False, "the container's first process is none of connect-dynamics " + ", ".join(PROCESSES)
        if process == "socket":
            return True, "socket is running (it has no probe of its own)"
        target = "web" if process == "serve" else "worker"
    return probe_web(settings) if target == "web" else probe_worker(settings)
