"""Waiting for something another thread or process does: poll with a deadline, never a bare sleep."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class WaitTimeout(AssertionError):
    """What was waited for did not happen in time."""


def wait_for(predicate: Callable[[], T], what: str = "condition", timeout: float = 20.0,
             interval: float = 0.05) -> T:
    """Poll `predicate` until it returns something truthy and return that; WaitTimeout after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise WaitTimeout(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(interval)
