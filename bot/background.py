"""Where slow work goes after the ack: a bounded thread pool of its own.

Bolt's listener threads must stay free for acks (Slack wants them within 3 s), so
anything that calls Dynamics, Marketo or Slack after the ack is submitted here, and
long jobs (the sync, the duplicate scan of a big org) go to RQ instead.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

log = logging.getLogger(__name__)


class Background:
    def __init__(self, max_workers: int = 16) -> None:
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="after-ack")

    def submit(self, fn: Callable[..., Any], *args: Any, on_error: Callable[[BaseException], None] | None = None,
               **kwargs: Any) -> Future:
        def run() -> Any:
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
