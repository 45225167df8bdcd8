"""Run an ASGI app (an emulator) on a loopback port in a background thread, optionally over TLS."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterable
from typing import Any

import uvicorn


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


class ServerThread:
    """uvicorn in a daemon thread; `start()` returns once the port accepts connections."""

    def __init__(
        self,
        app: Any,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        certfile: str | None = None,
        keyfile: str | None = None,
    ) -> None:
        self.host = host
        self.port = port or free_port(host)
        self.scheme = "https" if certfile else "http"
        config = uvicorn.Config(
            app,
            host=host,
            port=self.port,
            log_level="warning",
            access_log=False,
            ssl_certfile=certfile,
            ssl_keyfile=keyfile,
            lifespan="off",
            timeout_keep_alive=30,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._run, name=f"emulator-{self.port}", daemon=True)

    def _run(self) -> None:
        asyncio.run(self._server.serve())

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"

    def start(self, timeout: float = 10.0) -> ServerThread:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError(f"emulator on port {self.port} did not start")
            time.sleep(0.01)
        return self

    def request_stop(self) -> None:
        """Tell the server to exit, without waiting for it. Stop at once: an emulator has nothing to
        drain, and a client that keeps a connection open (msal's session does) would otherwise hold
        uvicorn's graceful shutdown for the whole join."""
        self._server.should_exit = True
        self._server.force_exit = True

    def stop(self) -> None:
        self.request_stop()
        self._thread.join(timeout=10)


class Emulator:
    """The lifecycle the emulators share: `start()` / `stop()`, or use one as a context manager."""

    _server: ServerThread | None = None

    def start(self) -> Emulator:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self):  # noqa: ANN204 - the emulator itself, whatever its class
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def server(self) -> ServerThread:
        if self._server is None:
            raise RuntimeError(f"the {type(self).__name__} is not running; call start() first")
        return self._server


def stop_all(emulators: Iterable[Any]) -> None:
    """Stop several emulators together. uvicorn takes a couple of ticks of its loop to shut down, so
    every server is told first and each `stop()` then mostly just joins a thread that is ending."""
    emulators = list(emulators)
    for emulator in emulators:
        server = getattr(emulator, "_server", None)
        if isinstance(server, ServerThread):
            server.request_stop()
    for emulator in emulators:
        emulator.stop()
