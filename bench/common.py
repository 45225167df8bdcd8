"""What the bench scripts share: how figures are printed, how big a run is, Redis keys, RSS.

Every bench script prints its figures as `name: value` lines on stdout (anything else goes to
stderr or is free text); `bench/run_all.py` collects those lines into its summary. Scripts are
run as `python bench/bench_x.py`, so each puts the repository root on `sys.path` before
importing this module as `bench.common`.
"""

from __future__ import annotations

import math
import os
import resource
import uuid
from collections.abc import Sequence
from typing import TypeVar

import redis

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/15")

T = TypeVar("T")


def quick() -> bool:
    """`BENCH_QUICK=1` (set by `run_all.py --quick`): smaller N, same measurements."""
    return os.environ.get("BENCH_QUICK", "") not in ("", "0")


def run_size(env_name: str, full: int, quick_size: int) -> int:
    """A run size: the environment variable `env_name` if set, else `quick_size` or `full`."""
    value = os.environ.get(env_name)
    if value:
        return int(value)
    return quick_size if quick() else full


def report(name: str, value: float | int | str) -> None:
    """One `name: value` figure line (floats with 3 decimals), flushed so run_all streams it."""
    text = f"{value:.3f}" if isinstance(value, float) else str(value)
    print(f"{name}: {text}", flush=True)


def peak_rss_mb() -> float:
    """This process's peak resident set (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def unique_prefix(kind: str) -> str:
    """A Redis key prefix no other run uses; under `run_all.py` it also names the whole run."""
    return f"{os.environ.get('BENCH_KEY_PREFIX', 'bench')}-{kind}-{uuid.uuid4().hex[:8]}"


def delete_prefix(client: redis.Redis, prefix: str) -> int:
    """Delete every key under `prefix` (the bot's `{prefix}:...` keys) and every RQ key naming it (its queues'
    registries, also those the bench process keeps under its own RQ key prefix)."""
    deleted = 0
    for pattern in (f"{prefix}:*", f"*rq:*{prefix}*"):
        for key in client.scan_iter(match=pattern, count=1000):
            deleted += client.delete(key)
    return deleted


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100): a value that was actually measured."""
    ordered = sorted(values)
    if not ordered:
        raise ValueError("no values")
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]
