"""`connect-dynamics probe web | worker` against the real `serve` and `worker` processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid

import pytest

from sandbox.server import free_port
from tests.support.processes import BotProcess, WebProcess

pytestmark = pytest.mark.e2e


def probe(target: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bot.cli", "probe", target], env={**os.environ, **env},
                          capture_output=True, text=True, timeout=30)


def wait_for_probe(target: str, env: dict[str, str], returncode: int, timeout: float = 20.0) -> str:
    """Polls the probe until it exits with `returncode`; returns its output line."""
    deadline = time.monotonic() + timeout
    while True:
        result = probe(target, env)
        if result.returncode == returncode or time.monotonic() > deadline:
            assert result.returncode == returncode, result.stdout + result.stderr
            return result.stdout.strip()
        time.sleep(0.1)


def test_the_web_probe_asks_the_local_serve(web: WebProcess, bot_env: dict[str, str]) -> None:
    said = probe("web", {**bot_env, "PORT": str(web.port)})
    assert said.returncode == 0, said.stdout + said.stderr
    assert said.stdout.strip() == f"connect-dynamics probe web: http://127.0.0.1:{web.port}/livez answered 200"
    nobody = probe("web", {**bot_env, "PORT": str(free_port())})
    assert nobody.returncode == 1 and "did not answer" in nobody.stdout


def test_the_worker_probe_follows_the_worker_s_heartbeat(bot_env: dict[str, str]) -> None:
    name = f"probe-{uuid.uuid4().hex[:8]}"
    env = {**bot_env, "WORKER_NAME": name, "SYNC_SWEEP_SECONDS": "0.2"}
    assert probe("worker", env).returncode == 1  # not started yet
    worker = BotProcess("worker", env).start()
    try:
        said = wait_for_probe("worker", env, 0)
        assert said == f"connect-dynamics probe worker: the heartbeat of worker {name!r} is fresh"
        assert probe("worker", {**env, "WORKER_NAME": f"{name}-other"}).returncode == 1
        worker.kill(signal.SIGKILL)  # no goodbye: the heartbeat expires after three rounds
        said = wait_for_probe("worker", env, 1, timeout=10)
        assert said.endswith("is missing or expired")
    finally:
        worker.stop()


def test_a_stopped_worker_fails_its_probe_at_once(bot_env: dict[str, str]) -> None:
    env = {**bot_env, "WORKER_NAME": f"probe-{uuid.uuid4().hex[:8]}", "SYNC_SWEEP_SECONDS": "60"}
    worker = BotProcess("worker", env).start()
    try:
        wait_for_probe("worker", env, 0)
        worker.process.terminate()
        worker.process.wait(timeout=30)
        assert probe("worker", env).returncode == 1  # the heartbeat would last 180 s: it was removed
    finally:
        worker.stop()


def test_the_worker_probe_fails_when_redis_does_not_answer(bot_env: dict[str, str]) -> None:
    result = probe("worker", {**bot_env, "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"})
    assert result.returncode == 1 and "Redis did not answer (ConnectionError)" in result.stdout
