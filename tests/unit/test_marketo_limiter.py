"""SharedLimiter against the real Redis: window, semaphore, leases, backoff, daily counter."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
import redis

from bot.marketo.errors import DailyQuotaExceeded
from bot.marketo.limiter import SharedLimiter, quota_days
from bot.store import Keys, LimiterState


def _limiter(redis_client: redis.Redis, key_prefix: str, **overrides: float) -> SharedLimiter:
    params = {"calls_per_window": 5, "window_seconds": 0.5, "max_concurrency": 2, **overrides}
    return SharedLimiter(LimiterState(redis_client, Keys(key_prefix)), **params)  # type: ignore[arg-type]


def _wait_until(predicate, timeout: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def test_window_refuses_the_call_over_the_limit_until_the_oldest_ages_out(redis_client, key_prefix) -> None:
    limiter = _limiter(redis_client, key_prefix, max_concurrency=10)
    for i in range(5):
        assert limiter.try_acquire(f"c{i}").wait == 0
        limiter.release(f"c{i}")
    wait = limiter.try_acquire("c5").wait
    assert 0 < wait <= 0.5
    _wait_until(lambda: limiter.try_acquire("c5").wait == 0)


def test_an_in_flight_call_counts_in_the_window_until_it_finishes(redis_client, key_prefix) -> None:
    limiter = _limiter(redis_client, key_prefix, calls_per_window=1, window_seconds=0.05, max_concurrency=10)
    assert limiter.try_acquire("slow").wait == 0
    time.sleep(0.1)  # longer than the window, while the call is still in flight
    assert limiter.try_acquire("next").wait > 0
    limiter.release("slow")
    assert limiter.try_acquire("next").wait > 0  # now counted from its finish
    _wait_until(lambda: limiter.try_acquire("next").wait == 0)


def test_concurrency_cap_and_release(redis_client, key_prefix) -> None:
    limiter = _limiter(redis_client, key_prefix, calls_per_window=100)
    assert limiter.try_acquire("a").wait == 0
    assert limiter.try_acquire("b").wait == 0
    assert limiter.try_acquire("c").wait == -1
    limiter.release("a")
    assert limiter.try_acquire("c").wait == 0


def test_a_killed_holder_loses_its_slot_after_the_lease(redis_client, key_prefix) -> None:
    limiter = _limiter(redis_client, key_prefix, calls_per_window=100, max_concurrency=1, lease_seconds=0.2)
    assert limiter.try_acquire("dead-process").wait == 0  # never released, as after SIGKILL
    assert limiter.try_acquire("survivor").wait == -1
    _wait_until(lambda: limiter.try_acquire("survivor").wait == 0)


def test_backoff_holds_everyone_and_never_shortens(redis_client, key_prefix) -> None:
    limiter = _limiter(redis_client, key_prefix)
    other_process = _limiter(redis_client, key_prefix)
    limiter.backoff(0.4)
    limiter.backoff(0.05)
    wait = other_process.try_acquire("x").wait
    assert 0.3 < wait <= 0.4
    started = time.monotonic()
    with other_process.slot():
        assert time.monotonic() - started >= 0.3


def test_slot_keeps_threads_within_both_limits(redis_client, key_prefix) -> None:
    limiter = _limiter(redis_client, key_prefix, calls_per_window=6, window_seconds=0.3, max_concurrency=2)
    lock = threading.Lock()
    active, peak, entered = 0, 0, []

    def call() -> None:
        nonlocal active, peak
        with limiter.slot():
            with lock:
                active += 1
                peak = max(peak, active)
                entered.append(time.monotonic())
            time.sleep(0.01)
            with lock:
                active -= 1

    threads = [threading.Thread(target=lambda: [call() for _ in range(4)]) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(entered) == 20
    assert peak <= 2
    entered.sort()
    in_any_window = max(sum(1 for t in entered if s <= t < s + 0.3) for s in entered)
    assert in_any_window <= 6


def test_slot_timeout(redis_client, key_prefix) -> None:
    from bot.marketo.limiter import LimiterTimeout

    limiter = _limiter(redis_client, key_prefix, max_concurrency=1)
    assert limiter.try_acquire("holder").wait == 0
    with pytest.raises(LimiterTimeout), limiter.slot(timeout=0.1):
        pass


CHICAGO = ZoneInfo("America/Chicago")


def _chicago(*fields: int) -> float:
    return datetime(*fields, tzinfo=CHICAGO).timestamp()


@pytest.mark.parametrize(("midnight", "utc_hour"), [((2026, 1, 15), 6), ((2026, 7, 15), 5)],
                         ids=["winter-CST", "summer-CDT"])
def test_the_quota_day_turns_at_midnight_in_chicago_by_the_clock_given(redis_client, key_prefix, midnight,
                                                                      utc_hour) -> None:
    limiter = _limiter(redis_client, key_prefix, calls_per_window=100, max_concurrency=10)
    turn = _chicago(*midnight)
    assert datetime.fromtimestamp(turn, UTC).hour == utc_hour
    before = limiter.try_acquire("late", quota=1, now=turn - 0.5)
    after = limiter.try_acquire("early", quota=1, now=turn + 0.5)
    assert (before.wait, after.wait) == (0, 0)
    assert int(after.day) == int(before.day) + 1 and after.day == f"{midnight[0]}{midnight[1]:02}{midnight[2]:02}"
    refused = limiter.try_acquire("same-day", quota=1, now=turn + 3600)
    assert refused.quota_exhausted and refused.day == after.day


def test_quota_days_follow_daylight_saving_time() -> None:
    days = quota_days(_chicago(2026, 3, 8, 12))  # DST starts that night at 02:00
    starts = {d.day: d.at for d in days}
    assert starts["20260309"] - starts["20260308"] == 23 * 3600
    assert starts["20260308"] - starts["20260307"] == 24 * 3600


def test_calls_today_counts_granted_calls_and_given_back_units(redis_client, key_prefix) -> None:
    limiter = _limiter(redis_client, key_prefix, calls_per_window=100, max_concurrency=10)
    assert limiter.calls_today() == 0
    with limiter.slot() as day:
        pass
    with limiter.slot():
        pass
    assert _limiter(redis_client, key_prefix).calls_today() == 2
    limiter.give_back(day)
    assert limiter.calls_today() == 1


def test_a_used_up_quota_refuses_at_once_without_taking_a_slot(redis_client, key_prefix) -> None:
    limiter = _limiter(redis_client, key_prefix, max_concurrency=1)
    with limiter.slot(quota=1):
        pass
    with pytest.raises(DailyQuotaExceeded), limiter.slot(quota=1):
        pass
    assert limiter.calls_today() == 1
    assert limiter.try_acquire("other").wait == 0  # no slot was left taken


def test_concurrency_above_marketo_cap_is_refused(redis_client, key_prefix) -> None:
    with pytest.raises(ValueError):
        _limiter(redis_client, key_prefix, max_concurrency=11)
