"""RQ's side of the store: the queues and workers of the product.

Every RQ key starts with `{REDIS_KEY_PREFIX}:rq:` (see `bot.store.rq_prefix`); queue names carry
the prefix as well (`{prefix}-sync`), so deployments that share a Redis database and an RQ
prefix still keep their queues apart.
"""

from __future__ import annotations

import redis
from rq import Queue, SimpleWorker


def queue(client: redis.Redis, prefix: str, name: str) -> Queue:
    return Queue(f"{prefix}-{name}", connection=client)


def worker(queues: list[Queue], client: redis.Redis) -> SimpleWorker:
    """The job runs in the worker process (no fork per job): see `bot.worker`."""
    return SimpleWorker(queues, connection=client)
