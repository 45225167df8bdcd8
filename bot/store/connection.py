"""Redis connections. `fakeredis://` is the embedded store, for the demo only."""

from __future__ import annotations

import functools

import redis

EMBEDDED_URL = "fakeredis://"


@functools.lru_cache(maxsize=1)
def _embedded_server() -> object:
    import fakeredis

    return fakeredis.FakeServer()


def connect(url: str, *, decode_responses: bool = False) -> redis.Redis:
    """A Redis client for `url`; the embedded fakeredis server when the scheme is fakeredis."""
    if url.startswith("fakeredis"):
        import fakeredis

        return fakeredis.FakeRedis(server=_embedded_server(), decode_responses=decode_responses)
    return redis.Redis.from_url(url, decode_responses=decode_responses, health_check_interval=30)
