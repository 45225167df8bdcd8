"""What the probes ask Redis: does it answer, and is a given worker's heartbeat fresh.

A probe must fail, never hang, when Redis does not answer: `Health.connect` makes a client
with short socket timeouts of its own, apart from the process's working client.
"""

from __future__ import annotations

import time

import redis

from bot.store.connection import connect
from bot.store.keys import Keys


class Health:
    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        self.client = client
        self.keys = keys

    @classmethod
    def connect(cls, url: str, prefix: str, *, timeout: float) -> Health:
        return cls(connect(url, timeout=timeout), Keys(prefix))

    def ping(self) -> None:
        """Returns when Redis answers; raises RedisError otherwise."""
        self.client.ping()

    def beat(self, worker: str, ttl_seconds: float) -> None:
        """`worker` is alive for the next `ttl_seconds`."""
        self.client.set(self.keys.worker_heartbeat(worker), f"{time.time():.3f}", px=max(1, int(ttl_seconds * 1000)))

    def stop(self, worker: str) -> None:
        """`worker` stopped: its heartbeat goes at once rather than when it expires."""
        self.client.delete(self.keys.worker_heartbeat(worker))

    def beating(self, worker: str) -> bool:
        return bool(self.client.exists(self.keys.worker_heartbeat(worker)))

    def close(self) -> None:
        self.client.close()
