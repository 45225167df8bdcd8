"""The Marketo limits, shared in Redis by every process: a sliding-window call limiter and a
concurrency semaphore with leases, plus a daily usage counter.

Why a call occupies the window from the moment it starts until it *finishes*: Marketo counts a
call when it arrives, which is somewhere between our start and our finish. Counting each call
while in flight and then for `window_seconds` after it completes guarantees that any set of
calls Marketo sees inside one window was all visible to whichever of them started last, so
the server-side count never exceeds ours, whatever the network latency.

A process killed mid-call cannot hold a slot forever: an in-flight entry carries a lease
deadline and is dropped (from the semaphore) or aged out (from the window) after it. All
timestamps are Redis server time, so processes on different machines agree. The Redis side
(scripts, keys, counters) is `bot.store.limiter`'s; this module holds the policy.
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta, timezone

from bot.errors import BotError
from bot.store import LimiterState

# Marketo resets the daily quota at 00:00 CST (reference C4).
CST = timezone(timedelta(hours=-6), "CST")

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

    def try_acquire(self, call_id: str) -> float:
        """Take a slot for `call_id` if both limits allow; else how long to wait (-1: unknown)."""
        return self.state.try_acquire(call_id, self.calls_per_window, self.window_seconds, self.max_concurrency,
                                      self.lease_seconds)

    def release(self, call_id: str) -> None:
        self.state.release(call_id, self.window_seconds)

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
        self.state.back_off(seconds)

    # -- daily usage ------------------------------------------------------------------------
    @staticmethod
    def _day(at: float | None = None) -> str:
        """The quota's day (CST) as YYYYMMDD."""
        return f"{datetime.fromtimestamp(time.time() if at is None else at, UTC).astimezone(CST):%Y%m%d}"

    def record_call(self, n: int = 1) -> int:
        """Count `n` calls against today's (CST) quota; returns today's total."""
        return self.state.add_calls(self._day(), n)

    def calls_today(self) -> int:
        return self.state.calls_on(self._day())

    @staticmethod
    def quota_resets_at(now: float | None = None) -> float:
        """Epoch seconds of the next 00:00 CST, when Marketo's daily quota resets."""
        local = datetime.fromtimestamp(time.time() if now is None else now, UTC).astimezone(CST)
        midnight = (local + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
        return midnight.timestamp()
