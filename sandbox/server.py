"""Run an ASGI app (an emulator) on a loopback port in a background thread, optionally over TLS."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from typing import Any

import uvicorn


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


class _Server(uvicorn.Server):
    """uvicorn's server, made to stop as soon as it is told: uvicorn's own looks for the exit flag every
    0.1 s and, shutting down, waits another 0.1 s for the connections it closed. An emulator has nothing
    to drain, and the tests stop hundreds of them."""

    _loop: asyncio.AbstractEventLoop | None = None
    _wake: asyncio.Event | None = None

    async def main_loop(self) -> None:
        self._loop, self._wake = asyncio.get_running_loop(), asyncio.Event()
        counter = 0
        while not await self.on_tick(counter):
            counter = (counter + 1) % 864000
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), 0.1)

    def wake(self) -> None:
        """From another thread: end the current wait of `main_loop` (it then sees `should_exit`)."""
        if self._loop is not None and self._wake is not None:
            with contextlib.suppress(RuntimeError):  # the loop has already ended
                self._loop.call_soon_threadsafe(self._wake.set)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        for server in self.servers:
            server.close()
        for sock in sockets or []:
            sock.close()
        for connection in list(self.server_state.connections):
            connection.shutdown()
        await asyncio.sleep(0)  # the closed connections' callbacks run
        for server in self.servers:
            await server.wait_closed()


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
        self._server = _Server(config)
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

    def stop(self) -> None:
        """Stop at once: an emulator has nothing to drain, and a client that keeps a connection open
        (msal's session does) would otherwise hold uvicorn's graceful shutdown for the whole join."""
        self._server.should_exit = True
        self._server.force_exit = True
        self._server.wake()
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
