"""SharedLimiter against the real Redis: window, semaphore, leases, backoff, daily counter."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

import pytest
import redis

from bot.marketo.limiter import CST, SharedLimiter
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
        assert limiter.try_acquire(f"c{i}") == 0
        limiter.release(f"c{i}")
    wait = limiter.try_acquire("c5")
    assert 0 < wait <= 0.5
    _wait_until(lambda: limiter.try_acquire("c5") == 0)


def test_an_in_flight_call_counts_in_the_window_until_it_finishes(redis_client, key_prefix) -> None:
    limiter = _limiter(redis_client, key_prefix, calls_per_window=1, window_seconds=0.05, max_concurrency=10)
    assert limiter.try_acquire("slow") == 0
    time.sleep(0.1)  # longer than the window, while the call is still in flight
    assert limiter.try_acquire("next") > 0
    limiter.release("slow")
    assert limiter.try_acquire("next") > 0  # now counted from its finish
    _wait_until(lambda: limiter.try_acquire("next") == 0)


def test_concurrency_cap_and_release(redis_client, key_prefix) -> None:
    limiter = _limiter(redis_client, key_prefix, calls_per_window=100)
    assert limiter.try_acquire("a") == 0
    assert limiter.try_acquire("b") == 0
    assert limiter.try_acquire("c") == -1
    limiter.release("a")
    assert limiter.try_acquire("c") == 0


def test_a_killed_holder_loses_its_slot_after_the_lease(redis_client, key_prefix) -> None:
    limiter = _limiter(redis_client, key_prefix, calls_per_window=100, max_concurrency=1, lease_seconds=0.2)
    assert limiter.try_acquire("dead-process") == 0  # never released, as after SIGKILL
    assert limiter.try_acquire("survivor") == -1
    _wait_until(lambda: limiter.try_acquire("survivor") == 0)


def test_backoff_holds_everyone_and_never_shortens(redis_client, key_prefix) -> None:
    limiter = _limiter(redis_client, key_prefix)
    other_process = _limiter(redis_client, key_prefix)
    limiter.backoff(0.4)
    limiter.backoff(0.05)
    wait = other_process.try_acquire("x")
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
    assert limiter.try_acquire("holder") == 0
    with pytest.raises(LimiterTimeout), limiter.slot(timeout=0.1):
        pass


def test_daily_counter_and_reset_time(redis_client, key_prefix) -> None:
    limiter = _limiter(redis_client, key_prefix)
    assert limiter.calls_today() == 0
    limiter.record_call()
    assert limiter.record_call(2) == 3
    assert _limiter(redis_client, key_prefix).calls_today() == 3
    now = time.time()
    resets = SharedLimiter.quota_resets_at(now)
    assert 0 < resets - now <= 86400
    local = datetime.fromtimestamp(resets, UTC).astimezone(CST)
    assert (local.hour, local.minute, local.second) == (0, 0, 0)


def test_concurrency_above_marketo_cap_is_refused(redis_client, key_prefix) -> None:
    with pytest.raises(ValueError):
        _limiter(redis_client, key_prefix, max_concurrency=11)
