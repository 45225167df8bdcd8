"""A loopback HTTP server that records what reaches it: the proof that nothing (or what) was sent."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sandbox.server import ServerThread


@dataclass
class Listener:
    port: int = 0
    requests: list[str] = field(default_factory=list)
    authorizations: list[str] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    bodies: list[bytes] = field(default_factory=list)
    status: int = 401  # what it answers; 401 comes with a Bearer challenge, as Dataverse's


@contextmanager
def listener(status: int = 401) -> Iterator[Listener]:
    """Answers every request `status` (by default 401 with a Bearer challenge, as Dataverse does)
    and records it; `status` may be changed while it runs."""
    seen = Listener(status=status)

    async def answer(request: Request) -> Response:
        seen.bodies.append(await request.body())
        seen.headers.append(dict(request.headers))
        seen.requests.append(str(request.url))
        seen.authorizations.append(request.headers.get("authorization", ""))
        challenge = {"WWW-Authenticate": "Bearer authorization_uri=x"} if seen.status == 401 else {}
        return Response(status_code=seen.status, headers=challenge)

    methods = ["GET", "POST", "PUT", "PATCH", "DELETE"]
    server = ServerThread(Starlette(routes=[Route("/{path:path}", answer, methods=methods)])).start()
    seen.port = server.port
    try:
        yield seen
    finally:
        server.stop()
