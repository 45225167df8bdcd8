"""The one lease/lock primitive: redis-py's `Lock`, with a token shared by the holder's threads.

Used for the per-entity sync lease (renewed by a heartbeat thread while the job's threads book
batches), the sweeper's one-at-a-time lock and the per-team start guard of the flow. `Lock`
gives atomic acquire (SET NX PX), release-if-mine and `reacquire` (reset the TTL if mine);
what a sync lease needs beyond it is:

- *renew or take back*: a holder that stalled past its TTL takes the lease back if nobody else
  took it (safe: every booking re-checks the lease and is idempotent per batch). `reacquire`
  refuses a lapsed lock, so `renew` falls back to `Lock.do_acquire` (SET NX) with the same token;
- *held?* inside a caller's WATCH/MULTI transaction, read on the caller's pipeline (`held_in`),
  so the check and the writes it guards commit together or not at all;
- a token that names its owner (the RQ job id), for whoever inspects Redis.

The token is not thread-local (`thread_local=False`): the heartbeat thread renews what the job's
thread acquired.
"""

from __future__ import annotations

import contextlib
import uuid

import redis
from redis.client import Pipeline
from redis.exceptions import LockError, LockNotOwnedError
from redis.lock import Lock


class Lease(Lock):
    """A lock that expires unless renewed: a killed holder frees it within `ttl` seconds."""

    def __init__(self, client: redis.Redis, key: str, ttl: float, owner: str = "", poll: float = 0.1) -> None:
        timeout = max(ttl, 0.1)
        super().__init__(client, key, timeout=timeout, sleep=poll, thread_local=False)
        self.key = key
        self.ttl_ms = int(timeout * 1000)
        self.token = f"{owner}:{uuid.uuid4().hex}".encode()

    def take(self, wait: float = 0.0) -> bool:
        """Acquire with this lease's token, waiting up to `wait` seconds."""
        return self.acquire(blocking=wait > 0, blocking_timeout=wait, token=self.token.decode())

    def renew(self) -> bool:
        """Extend the lease if it is ours; take it back if it lapsed and nobody took it."""
        self.local.token = self.token
        try:
            return self.reacquire()
        except LockNotOwnedError:
            return self.do_acquire(self.token.decode())

    def release(self) -> None:
        """Free the lease if it is still ours (an expired one may belong to someone else now)."""
        with contextlib.suppress(LockError):
            super().release()

    def held_in(self, pipe: Pipeline) -> bool:
        """Is the lease ours, read on a pipeline that WATCHes `key` (call `watch(lease.key)` first)."""
        return pipe.get(self.key) == self.token
