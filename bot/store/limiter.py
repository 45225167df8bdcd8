"""The Redis side of the shared Marketo limiter: its Lua scripts, keys and daily counters.

The policy (how long to wait, jitter, the quota's time zone) is `bot.marketo.limiter`'s. All
timestamps are Redis server time (`TIME` inside the scripts), so processes on different
machines agree, and so does the quota's day: the caller passes the instants at which the days
around now begin in Marketo's time zone, and the script picks the one Redis' clock is in. (The
day counter's key is therefore completed inside the script, from the prefix passed as a key: fine
on the single Redis the product uses, not on Redis Cluster.)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import redis

from bot.store.keys import Keys

# ARGV from `day_args` on: [now override or ''] then (start epoch seconds, YYYYMMDD) pairs, ascending.
_TODAY = """
local function quota_day(from)
  local now = tonumber(ARGV[from])
  if not now then
    local t = redis.call('TIME')
    now = tonumber(t[1]) + tonumber(t[2]) / 1e6
  end
  local day = nil
  for i = from + 1, #ARGV, 2 do
    if tonumber(ARGV[i]) <= now then day = ARGV[i + 1] end
  end
  return day, now
end
"""

_ACQUIRE = _TODAY + """
local win, conc, back, used_prefix = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local limit, window, max_conc = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local lease, id, quota, day_ttl = tonumber(ARGV[4]), ARGV[5], tonumber(ARGV[6]), tonumber(ARGV[7])
local day, now = quota_day(8)
if not day then return {'clock', ''} end
local used = used_prefix .. day
if quota > 0 and tonumber(redis.call('GET', used) or '0') >= quota then return {'quota', day} end
local until_ = tonumber(redis.call('GET', back) or '0')
if until_ > now then return {tostring(until_ - now), day} end
redis.call('ZREMRANGEBYSCORE', win, '-inf', now - window)
redis.call('ZREMRANGEBYSCORE', conc, '-inf', now)
if redis.call('ZCARD', conc) >= max_conc then return {'-1', day} end
local n = redis.call('ZCARD', win)
if n >= limit then
  local entry = redis.call('ZRANGE', win, n - limit, n - limit, 'WITHSCORES')
  return {tostring(math.max(tonumber(entry[2]) + window - now, 0.001)), day}
end
redis.call('ZADD', win, now + lease, id)
redis.call('ZADD', conc, now + lease, id)
local ttl = math.ceil((lease + window) * 1000)
redis.call('PEXPIRE', win, ttl)
redis.call('PEXPIRE', conc, ttl)
redis.call('INCR', used)
redis.call('EXPIRE', used, day_ttl)
return {'0', day}
"""

_USED = _TODAY + """
local day = quota_day(1)
if not day then return {'', 0} end
return {day, tonumber(redis.call('GET', KEYS[1] .. day) or '0')}
"""

_GIVE_BACK = """
if tonumber(redis.call('GET', KEYS[1]) or '0') > 0 then redis.call('DECR', KEYS[1]) end
return 1
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


class DayStart(NamedTuple):
    """A day of the quota (YYYYMMDD) and the instant (epoch seconds) it begins."""

    at: float
    day: str


class Attempt(NamedTuple):
    """What one try for a slot gave. `wait`: 0 granted (and one call counted on `day`), > 0 seconds
    until the window frees, -1 the concurrency cap is reached (poll); `quota_exhausted`: refused
    because `day`'s calls reached the quota (nothing was taken)."""

    wait: float
    day: str
    quota_exhausted: bool = False


class ClockOutsideDays(RuntimeError):
    """Redis' clock is before every given day start: the caller's table does not cover now."""


def _day_args(days: Sequence[DayStart], now: float | None) -> list[str | float]:
    args: list[str | float] = ["" if now is None else repr(now)]
    for start in sorted(days):
        args += [repr(start.at), start.day]
    return args


class LimiterState:
    """A sliding window of calls, a semaphore of calls in flight (entries with lease deadlines),
    a global back-off deadline and per-day call counters, all under `{prefix}:global:marketo:limiter`."""

    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        self._redis = client
        self._keys = keys
        self._slots = [keys.marketo_limiter("window"), keys.marketo_limiter("slots"), keys.marketo_limiter("backoff")]
        self._day_prefix = keys.marketo_limiter("day:")
        self._acquire = client.register_script(_ACQUIRE)
        self._release = client.register_script(_RELEASE)
        self._backoff = client.register_script(_BACKOFF)
        self._used = client.register_script(_USED)
        self._give_back = client.register_script(_GIVE_BACK)

    def try_acquire(self, call_id: str, calls_per_window: int, window_seconds: float, max_concurrency: int,
                    lease_seconds: float, *, quota: int, days: Sequence[DayStart],
                    now: float | None = None) -> Attempt:
        """In one atomic step: refuse if today's calls reached `quota` (0: no quota), else take a slot
        for `call_id` if the window and the semaphore allow, counting the call on today. "Today" is the
        last of `days` that began at or before Redis' `TIME` (or `now`, for tests of the boundary)."""
        args = [calls_per_window, window_seconds, max_concurrency, lease_seconds, call_id, quota, DAY_KEY_TTL,
                *_day_args(days, now)]
        verdict, day = (part.decode() for part in self._acquire(keys=[*self._slots, self._day_prefix], args=args))
        if verdict == "clock":
            raise ClockOutsideDays("Redis' clock is outside the quota days given")
        if verdict == "quota":
            return Attempt(0.0, day, quota_exhausted=True)
        return Attempt(float(verdict), day)

    def release(self, call_id: str, window_seconds: float) -> None:
        """Free the concurrency slot; the call stays in the window for `window_seconds` from now."""
        self._release(keys=self._slots[:2], args=[call_id, window_seconds])

    def back_off(self, seconds: float) -> None:
        """Refuse every slot for `seconds`; never shortens an existing back-off."""
        self._backoff(keys=[self._slots[2]], args=[seconds])

    def give_back(self, day: str) -> None:
        """Uncount one call of `day` (one that never reached Marketo or that Marketo did not count)."""
        self._give_back(keys=[self._day_prefix + day])

    def calls_today(self, days: Sequence[DayStart], now: float | None = None) -> tuple[str, int]:
        """(today, calls counted on it), today chosen from `days` by Redis' `TIME` as in `try_acquire`."""
        day, used = self._used(keys=[self._day_prefix], args=_day_args(days, now))
        if not day:
            raise ClockOutsideDays("Redis' clock is outside the quota days given")
        return day.decode(), int(used)
