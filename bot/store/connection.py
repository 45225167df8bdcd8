"""Redis connections."""

from __future__ import annotations

import redis


def connect(url: str, *, decode_responses: bool = False) -> redis.Redis:
    """A Redis client for `url` (`redis://`, `rediss://` or `unix://`)."""
    return redis.Redis.from_url(url, decode_responses=decode_responses, health_check_interval=30)
