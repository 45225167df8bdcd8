"""The one optimistic transaction of the product: WATCH the keys, read, then MULTI/EXEC the writes.

Concurrent writers (two leads clicking Approve, two workers booking batches) never lose an
update: when a watched key changes between the read and the write, the whole body runs again
on fresh data. The body must therefore only read and decide; it may raise to abort.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import redis
from redis.client import Pipeline

T = TypeVar("T")

# A write queues commands in MULTI; whatever it returns (a queued pipeline) is dropped.
Writes = Callable[[Pipeline], object]


def transact(client: redis.Redis, keys: list[str], body: Callable[[Pipeline], tuple[Writes | None, T]]) -> T:
    """Run `body(pipe)` with `keys` watched; it returns (writes or None, result). Writes run in MULTI."""
    with client.pipeline() as pipe:
        while True:
            try:
                pipe.watch(*keys)
                writes, result = body(pipe)
                if writes is None:
                    pipe.unwatch()
                    return result
                pipe.multi()
                writes(pipe)
                pipe.execute()
                return result
            except redis.WatchError:
                continue
