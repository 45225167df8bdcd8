"""The Marketo limits, shared in Redis by every process: a sliding-window call limiter and a
concurrency semaphore with leases, plus a daily usage counter.

Why a call occupies the window from the moment it starts until it *finishes*: Marketo counts a
call when it arrives, which is somewhere between our start and our finish. Counting each call
while in flight and then for `window_seconds` after it completes guarantees that any set of
calls Marketo sees inside one window was all visible to whichever of them started last, so
the server-side count never exceeds ours, whatever the network latency.

A process killed mid-call cannot hold a slot forever: an in-flight entry carries a lease
deadline and is dropped (from the semaphore) or aged out (from the window) after it. All
timestamps are Redis server time, so processes on different machines agree.
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta, timezone

import redis

from bot.errors import BotError

# Marketo resets the daily quota at 00:00 CST (reference C4).
CST = timezone(timedelta(hours=-6), "CST")

_ACQUIRE = """
local win, conc, back = KEYS[1], KEYS[2], KEYS[3]
local limit, window, max_conc = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local lease, id = tonumber(ARGV[4]), ARGV[5]
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1e6
local until_ = tonumber(redis.call('GET', back) or '0')
if until_ > now then return tostring(until_ - now) end
redis.call('ZREMRANGEBYSCORE', win, '-inf', now - window)
redis.call('ZREMRANGEBYSCORE', conc, '-inf', now)
if redis.call('ZCARD', conc) >= max_conc then return '-1' end
local n = redis.call('ZCARD', win)
if n >= limit then
  local entry = redis.call('ZRANGE', win, n - limit, n - limit, 'WITHSCORES')
  return tostring(math.max(tonumber(entry[2]) + window - now, 0.001))
end
redis.call('ZADD', win, now + lease, id)
redis.call('ZADD', conc, now + lease, id)
local ttl = math.ceil((lease + window) * 1000)
redis.call('PEXPIRE', win, ttl)
redis.call('PEXPIRE', conc, ttl)
return '0'
"""

_RELEASE = """
local win, conc, id, window = KEYS[1], KEYS[2], ARGV[1], tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1e6
redis.call('ZREM', conc, id)
redis.call('ZADD', win, 'XX', now, id)
redis.call('PEXPIRE', win, math.ceil(window * 1000) + 1000, 'GT')
return 1
"""

_BACKOFF = """
local t = redis.call('TIME')
local until_ = tonumber(t[1]) + tonumber(t[2]) / 1e6 + tonumber(ARGV[1])
if until_ > tonumber(redis.call('GET', KEYS[1]) or '0') then
  redis.call('SET', KEYS[1], tostring(until_), 'PX', math.ceil(tonumber(ARGV[1]) * 1000) + 1000)
end
return 1
"""


class LimiterTimeout(BotError):
    user_message = (
        "The bot waited too long for a free Marketo API slot. Other syncs may be using the Marketo "
        "limits heavily; try again in a few minutes."
    )


class SharedLimiter:
    """`with limiter.slot():` around every Marketo call, in every process, on one Redis key."""

    def __init__(
        self,
        redis_client: redis.Redis,
        key: str,
        calls_per_window: int,
        window_seconds: float,
        max_concurrency: int,
        *,
        lease_seconds: float = 120.0,
        max_poll: float = 0.25,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not 1 <= max_concurrency <= 10:
            raise ValueError("max_concurrency must be between 1 and 10 (Marketo allows 10 concurrent calls)")
        self.redis = redis_client
        self.key = key
        self.calls_per_window = calls_per_window
        self.window_seconds = window_seconds
        self.max_concurrency = max_concurrency
        self.lease_seconds = lease_seconds
        self.max_poll = max_poll
        self._sleep = sleep
        self._keys = [f"{key}:window", f"{key}:slots", f"{key}:backoff"]
        self._acquire = redis_client.register_script(_ACQUIRE)
        self._release = redis_client.register_script(_RELEASE)
        self._backoff = redis_client.register_script(_BACKOFF)

    def try_acquire(self, call_id: str) -> float:
        """Take a slot for `call_id` if both limits allow; else how long to wait (-1: unknown)."""
        args = [self.calls_per_window, self.window_seconds, self.max_concurrency, self.lease_seconds, call_id]
        return float(self._acquire(keys=self._keys, args=args))

    def release(self, call_id: str) -> None:
        self._release(keys=self._keys[:2], args=[call_id, self.window_seconds])

    @contextmanager
    def slot(self, timeout: float | None = None) -> Iterator[None]:
        """Block until the window and the semaphore both allow one more call.

        Waits are jittered and never shorter than a few milliseconds, so many waiters
        do not spin on Redis; `timeout` raises LimiterTimeout.
        """
        call_id = uuid.uuid4().hex
        deadline = None if timeout is None else time.monotonic() + timeout
        while (wait := self.try_acquire(call_id)) != 0:
            if deadline is not None and time.monotonic() > deadline:
                raise LimiterTimeout(detail=f"no Marketo slot within {timeout} s")
            if wait < 0:  # concurrency cap: no known free time, poll
                delay = random.uniform(0.005, 0.03)
            else:
                delay = min(wait, self.max_poll) + random.uniform(0.001, 0.01)
            self._sleep(delay)
        try:
            yield
        finally:
            self.release(call_id)

    def backoff(self, seconds: float) -> None:
        """Hold every process off for `seconds` (after a 606/615); never shortens an existing hold."""
        self._backoff(keys=[self._keys[2]], args=[seconds])

    # -- daily usage ------------------------------------------------------------------------
    def _day_key(self, at: float | None = None) -> str:
        day = datetime.fromtimestamp(time.time() if at is None else at, UTC).astimezone(CST)
        return f"{self.key}:day:{day:%Y%m%d}"

    def record_call(self, n: int = 1) -> int:
        """Count `n` calls against today's (CST) quota; returns today's total."""
        key = self._day_key()
        with self.redis.pipeline() as pipe:
            pipe.incrby(key, n)
            pipe.expire(key, 2 * 86400)
            total, _ = pipe.execute()
        return int(total)

    def calls_today(self) -> int:
        raw = self.redis.get(self._day_key())
        return int(raw) if raw else 0

    @staticmethod
    def quota_resets_at(now: float | None = None) -> float:
        """Epoch seconds of the next 00:00 CST, when Marketo's daily quota resets."""
        local = datetime.fromtimestamp(time.time() if now is None else now, UTC).astimezone(CST)
        midnight = (local + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
        return midnight.timestamp()
