"""Redis connections."""

from __future__ import annotations

import redis

# What redis-py raises when Redis cannot be reached or does not answer in time: a blip, a restart,
# a failover. (Its own retries, a few seconds' worth, have already been spent by then.)
REDIS_UNAVAILABLE: tuple[type[redis.RedisError], ...] = (redis.ConnectionError, redis.TimeoutError)


def connect(url: str, *, decode_responses: bool = False, timeout: float | None = None) -> redis.Redis:
    """A Redis client for `url` (`redis://`, `rediss://` or `unix://`); with `timeout`, connecting and
    every command give up after that many seconds."""
    return redis.Redis.from_url(url, decode_responses=decode_responses, health_check_interval=30,
                                socket_timeout=timeout, socket_connect_timeout=timeout)


def as_text(raw: bytes | str) -> str:
    """A Redis reply as text: the clients here do not decode responses, so replies come as bytes."""
    return raw.decode() if isinstance(raw, bytes) else raw
