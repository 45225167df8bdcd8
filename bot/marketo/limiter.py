"""The Marketo limits, shared in Redis by every process: a sliding-window call limiter, a
concurrency semaphore with leases, and the daily quota.

Why a call occupies the window from the moment it starts until it *finishes*: Marketo counts a
call when it arrives, which is somewhere between our start and our finish. Counting each call
while in flight and then for `window_seconds` after it completes guarantees that any set of
calls Marketo sees inside one window was all visible to whichever of them started last, so
the server-side count never exceeds ours, whatever the network latency.

A process killed mid-call cannot hold a slot forever: an in-flight entry carries a lease
deadline and is dropped (from the semaphore) or aged out (from the window) after it. All
timestamps are Redis server time, so processes on different machines agree. The Redis side
(scripts, keys, counters) is `bot.store.limiter`'s; this module holds the policy.

The daily quota is reserved in the same atomic step that grants the slot: a slot is granted only
with a unit of today's quota, so however many threads and processes wait, no more calls than the
quota are ever sent in a day. A call that then never reaches Marketo (no connection), or that
Marketo does not count (601, 602 and the like), gives its unit back.

Marketo's quota day starts at midnight US Central time (America/Chicago, with daylight saving
time). Lua inside Redis has no time-zone database, and the day must come from Redis' clock, not
a worker's: so Python (`zoneinfo`) computes when the days around now begin in that zone, and the
script picks the day Redis' `TIME` falls in. A worker clock off by less than a day still gives
a table that covers Redis' now; the table's midnights are exact across DST changes.
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from bot.errors import BotError
from bot.marketo.errors import DailyQuotaExceeded
from bot.store import Attempt, DayStart, LimiterState

# Marketo resets the daily quota at midnight US Central time.
QUOTA_ZONE = ZoneInfo("America/Chicago")


class LimiterTimeout(BotError):
    user_message = (
        "The bot waited too long for a free Marketo API slot. Other syncs may be using the Marketo "
        "limits heavily; try again in a few minutes."
    )


class SharedLimiter:
    """`with limiter.slot():` around every Marketo call, in every process, on one shared state."""

    def __init__(
        self,
        state: LimiterState,
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
        self.state = state
        self.calls_per_window = calls_per_window
        self.window_seconds = window_seconds
        self.max_concurrency = max_concurrency
        self.lease_seconds = lease_seconds
        self.max_poll = max_poll
        self._sleep = sleep

    def try_acquire(self, call_id: str, *, quota: int | None = None, now: float | None = None) -> Attempt:
        """Take a slot for `call_id` if the limits allow, counting the call on today's quota; with a
        `quota`, only while today's calls are fewer. `now` stands in for Redis' clock in tests of the
        day boundary."""
        return self.state.try_acquire(call_id, self.calls_per_window, self.window_seconds, self.max_concurrency,
                                      self.lease_seconds, quota=quota or 0,
                                      days=quota_days(time.time() if now is None else now), now=now)

    def release(self, call_id: str) -> None:
        self.state.release(call_id, self.window_seconds)

    @contextmanager
    def slot(self, timeout: float | None = None, *, quota: int | None = None) -> Iterator[str]:
        """Block until the window and the semaphore both allow one more call and a unit of today's
        quota is reserved for it; yields the quota day the call is counted on (see `give_back`).

        Waits are jittered and never shorter than a few milliseconds, so many waiters do not spin
        on Redis; `timeout` raises LimiterTimeout, a used-up `quota` DailyQuotaExceeded at once.
        """
        call_id = uuid.uuid4().hex
        deadline = None if timeout is None else time.monotonic() + timeout
        while (attempt := self.try_acquire(call_id, quota=quota)).wait != 0 or attempt.quota_exhausted:
            if attempt.quota_exhausted:
                raise DailyQuotaExceeded("607", f"the daily quota of {quota} calls (MARKETO_DAILY_QUOTA) "
                                                "is used up")
            if deadline is not None and time.monotonic() > deadline:
                raise LimiterTimeout(detail=f"no Marketo slot within {timeout} s")
            if attempt.wait < 0:  # concurrency cap: no known free time, poll
                delay = random.uniform(0.005, 0.03)
            else:
                delay = min(attempt.wait, self.max_poll) + random.uniform(0.001, 0.01)
            self._sleep(delay)
        try:
            yield attempt.day
        finally:
            self.release(call_id)

    def backoff(self, seconds: float) -> None:
        """Hold every process off for `seconds` (after a 606/615); never shortens an existing hold."""
        self.state.back_off(seconds)

    # -- daily usage ------------------------------------------------------------------------
    def give_back(self, day: str) -> None:
        """Return the quota unit of a call that never reached Marketo or that Marketo did not count."""
        self.state.give_back(day)

    def calls_today(self) -> int:
        """Calls counted on today's quota (today by Redis' clock, in Marketo's time zone)."""
        return self.state.calls_today(quota_days(time.time()))[1]


def quota_days(around: float, margin: int = 2) -> list[DayStart]:
    """The quota days from `margin` days before to `margin` days after the local date of `around`
    (epoch seconds), each with the instant its midnight falls in Marketo's time zone."""
    today = datetime.fromtimestamp(around, QUOTA_ZONE).date()
    return [_day_start(today + timedelta(days=shift)) for shift in range(-margin, margin + 1)]


def _day_start(day: date) -> DayStart:
    midnight = datetime(day.year, day.month, day.day, tzinfo=QUOTA_ZONE)
    return DayStart(midnight.timestamp(), f"{day:%Y%m%d}")
