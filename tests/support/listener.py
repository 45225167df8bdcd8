"""A loopback HTTP server that only counts what reaches it: the proof that nothing was sent."""

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


@contextmanager
def listener() -> Iterator[Listener]:
    """Answers every request 401 with a Bearer challenge, as Dataverse does, and records it."""
    seen = Listener()

    async def answer(request: Request) -> Response:
        seen.requests.append(str(request.url))
        seen.authorizations.append(request.headers.get("authorization", ""))
        return Response(status_code=401, headers={"WWW-Authenticate": "Bearer authorization_uri=x"})

    server = ServerThread(Starlette(routes=[Route("/{path:path}", answer)])).start()
    seen.port = server.port
    try:
        yield seen
    finally:
        server.stop()
