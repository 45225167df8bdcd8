"""The Redis side of the shared Marketo limiter: its Lua scripts, keys and daily counter.

The policy (how long to wait, jitter, the quota's day) is `bot.marketo.limiter`'s. All
timestamps are Redis server time (`TIME` inside the scripts), so processes on different
machines agree.
"""

from __future__ import annotations

import redis

from bot.store.keys import Keys

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

DAY_KEY_TTL = 2 * 86400


class LimiterState:
    """A sliding window of calls, a semaphore of calls in flight (entries with lease deadlines),
    a global back-off deadline and per-day call counters, all under `{prefix}:global:marketo:limiter`."""

    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        self._redis = client
        self._keys = keys
        self._slots = [keys.marketo_limiter("window"), keys.marketo_limiter("slots"), keys.marketo_limiter("backoff")]
        self._acquire = client.register_script(_ACQUIRE)
        self._release = client.register_script(_RELEASE)
        self._backoff = client.register_script(_BACKOFF)

    def try_acquire(self, call_id: str, calls_per_window: int, window_seconds: float, max_concurrency: int,
                    lease_seconds: float) -> float:
        """Take a slot for `call_id` if both limits allow; else how long to wait (-1: unknown)."""
        args = [calls_per_window, window_seconds, max_concurrency, lease_seconds, call_id]
        return float(self._acquire(keys=self._slots, args=args))

    def release(self, call_id: str, window_seconds: float) -> None:
        """Free the concurrency slot; the call stays in the window for `window_seconds` from now."""
        self._release(keys=self._slots[:2], args=[call_id, window_seconds])

    def back_off(self, seconds: float) -> None:
        """Refuse every slot for `seconds`; never shortens an existing back-off."""
        self._backoff(keys=[self._slots[2]], args=[seconds])

    def add_calls(self, day: str, n: int) -> int:
        """Count `n` calls on `day` (YYYYMMDD); returns that day's total."""
        key = self._keys.marketo_limiter(f"day:{day}")
        with self._redis.pipeline() as pipe:
            pipe.incrby(key, n)
            pipe.expire(key, DAY_KEY_TTL)
            total, _ = pipe.execute()
        return int(total)

    def calls_on(self, day: str) -> int:
        raw = self._redis.get(self._keys.marketo_limiter(f"day:{day}"))
        return int(raw) if raw else 0
