"""Where slow work goes after the ack: a bounded thread pool of its own.

Bolt's listener threads must stay free for acks (Slack wants them within 3 s), so
anything that calls Dynamics, Marketo or Slack after the ack is submitted here, and
long jobs (the sync, the duplicate scan of a big org) go to RQ instead.

Python threads share one interpreter lock and have no priorities: after-ack work running while a
burst of requests waits for its acks takes turns with them, and every ack of the burst waits for
it. So each piece of work first waits until the web front is quiet (`AckGate`: no ack in flight
and none for 100 ms), for at most `max_defer` seconds after it was submitted: well inside the 3 s
a trigger id lives, so a modal opened after the ack still opens.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

log = logging.getLogger(__name__)

MAX_DEFER_SECONDS = 0.5
# Longer than the gaps between the requests of one burst on a busy machine (bench_ack at load 10
# on 2 cores showed gaps past 30 ms), short next to the round trip of the Slack call that follows.
SETTLE_SECONDS = 0.1


class AckGate:
    """The Slack requests of this process between arrival and ack, and when the last was acked.

    "Quiet" is no ack in flight and none for `settle` seconds: requests of a burst reach the
    handler one after another (the event loop reads them in turn), so a gap of zero in flight
    between two of them is not the end of the burst. Waiters look again every `settle` seconds
    rather than being woken by each ack: waking every waiting thread at each ack of a burst would
    cost the burst the very turns at the interpreter lock this gate saves."""

    def __init__(self, settle: float = SETTLE_SECONDS) -> None:
        self._settle = settle
        self._in_flight = 0
        self._last_ack = -settle
        self._lock = threading.Condition()

    @contextlib.contextmanager
    def acking(self) -> Iterator[None]:
        with self._lock:
            self._in_flight += 1
        try:
            yield
        finally:
            with self._lock:
                self._in_flight -= 1
                self._last_ack = time.monotonic()

    def wait_quiet(self, timeout: float) -> bool:
        """Block until quiet (True) or until `timeout` seconds have passed (False)."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                now = time.monotonic()
                if not self._in_flight and now - self._last_ack >= self._settle:
                    return True
                if now >= deadline:
                    return False
                # in flight: look again a settle time later (never spinning, even with settle 0)
                quiet_at = now + max(self._settle, 0.01) if self._in_flight else self._last_ack + self._settle
                self._lock.wait(min(quiet_at, deadline) - now)


class Background:
    def __init__(self, max_workers: int = 16, gate: AckGate | None = None,
                 max_defer: float = MAX_DEFER_SECONDS) -> None:
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="after-ack")
        self._gate = gate or AckGate()
        self._max_defer = max_defer

    def submit(self, fn: Callable[..., Any], *args: Any, on_error: Callable[[BaseException], None] | None = None,
               **kwargs: Any) -> Future:
        submitted = time.monotonic()

        def run() -> Any:
            self._gate.wait_quiet(submitted + self._max_defer - time.monotonic())
            try:
                return fn(*args, **kwargs)
            except BaseException as exc:  # noqa: BLE001 - reported to the user, then logged
                log.exception("background work failed: %s", getattr(fn, "__name__", fn))
                if on_error is not None:
                    try:
                        on_error(exc)
                    except Exception:  # noqa: BLE001
                        log.exception("could not report a background failure")
                raise

        return self._pool.submit(run)

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=False)
