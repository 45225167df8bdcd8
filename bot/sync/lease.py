"""Holding an entity's sync lease while a job runs: the heartbeat that renews it, the error when it is lost."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from bot.errors import BotError
from bot.store import Lease, RedisError, Store


class LeaseLost(BotError):
    user_message = "Another worker took over this part of the sync; this one stopped without changing anything."


class Heartbeat(threading.Thread):
    """Renews a lease and watches for a cancel request and for the process being asked to stop
    (`interrupted`); sets `stop` when any says to stop, and `reason` to "lease", "cancel" or "shutdown"."""

    def __init__(self, lease: Lease, interval: float, cancelled: Callable[[], bool],
                 interrupted: Callable[[], bool] = lambda: False) -> None:
        super().__init__(daemon=True, name="sync-heartbeat")
        self.lease = lease
        self.interval = interval
        self.cancelled = cancelled
        self.interrupted = interrupted
        self.stop = threading.Event()
        self.reason: str | None = None
        self._quit = threading.Event()

    def run(self) -> None:
        renew_every = max(self.lease.ttl_ms / 3000, 0.05)
        last_renew = time.monotonic()
        while not self._quit.wait(self.interval):
            try:
                if time.monotonic() - last_renew >= renew_every:
                    if not self.lease.renew():
                        self._halt("lease")
                        return
                    last_renew = time.monotonic()
                if self.cancelled():
                    self._halt("cancel")
                elif self.interrupted():
                    self._halt("shutdown")
            except RedisError:
                continue  # a blip: the lease has slack, try again next tick

    def _halt(self, reason: str) -> None:
        if self.reason is None:
            self.reason = reason
        self.stop.set()

    def close(self) -> None:
        self._quit.set()
        self.join(timeout=5)


@contextmanager
def connection_job(store: Store, team_id: str, connection_id: str, name: str, ttl: float,
                   owner: str) -> Iterator[Heartbeat | None]:
    """For a job of which one runs at a time per connection (the write-back, the custom tables): the
    connection's lease `name` held and renewed for the block (its heartbeat's `stop` is set if it is
    lost); None when another job holds it."""
    lease = store.sync_lease(team_id, connection_id, name, ttl, owner=owner)
    if not lease.take():
        yield None
        return
    heartbeat = Heartbeat(lease, 1.0, lambda: False)
    heartbeat.start()
    try:
        yield heartbeat
    finally:
        heartbeat.close()
        lease.release()
