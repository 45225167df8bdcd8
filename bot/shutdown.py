"""This process was asked to stop (SIGTERM to a worker): the running sync job hands its entity over.

Set by the worker's warm-shutdown hook (`bot.worker`), read by the sync heartbeat, which stops the
entity at its next batch boundary; the job then books its checkpoint, re-enqueues the entity for
another worker and releases its lease, and RQ ends the process once the job returns.
"""

from __future__ import annotations

import threading

_requested = threading.Event()


def request() -> None:
    _requested.set()


def requested() -> bool:
    return _requested.is_set()
