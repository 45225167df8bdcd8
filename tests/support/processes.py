"""The bot's real processes (`connect-dynamics serve` / `worker`) as subprocesses for end-to-end tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time

import httpx

from sandbox.server import free_port


class BotProcess:
    def __init__(self, command: str, env: dict[str, str]) -> None:
        self.command = command
        self.env = {**os.environ, **env, "PYTHONUNBUFFERED": "1"}
        self.log = tempfile.NamedTemporaryFile(prefix=f"cd-{command}-", suffix=".log", delete=False)  # noqa: SIM115
        self.process: subprocess.Popen | None = None

    def start(self) -> BotProcess:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bot.cli", self.command],
            env=self.env, stdout=self.log, stderr=subprocess.STDOUT,
        )
        return self

    def output(self) -> str:
        with open(self.log.name, encoding="utf-8", errors="replace") as handle:
            return handle.read()

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(sig)
            self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=15)
        self.log.close()
        os.unlink(self.log.name)


class WebProcess(BotProcess):
    def __init__(self, env: dict[str, str]) -> None:
        self.port = free_port()
        super().__init__("serve", {**env, "PORT": str(self.port)})

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> WebProcess:
        super().start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"serve exited early:\n{self.output()}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"serve did not become healthy:\n{self.output()}")
