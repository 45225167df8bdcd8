"""Does Redis keep its data across a restart? Read at worker start-up, to warn an operator.

Everything the product knows lives in Redis (runs, checkpoints, approvals, queued jobs): without
AOF or RDB snapshots a Redis restart forgets it all. Managed Redis services often refuse `CONFIG`;
then the snapshot schedule is unknown and nothing is claimed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import redis

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Persistence:
    aof: bool  # `appendonly yes`
    snapshots: bool | None  # RDB save points configured; None: `CONFIG GET save` was refused

    @property
    def none(self) -> bool:
        return not self.aof and self.snapshots is False


def read_persistence(client: redis.Redis) -> Persistence:
    try:
        aof = str(client.info("persistence").get("aof_enabled", 0)) == "1"
    except redis.ResponseError:  # INFO refused (a restricted user, the demo's embedded store): cannot tell
        return Persistence(aof=False, snapshots=None)
    try:
        save = client.config_get("save").get("save", "")
    except redis.ResponseError:  # CONFIG disabled or not allowed for this user
        return Persistence(aof=aof, snapshots=None)
    text = save.decode() if isinstance(save, bytes) else str(save)
    return Persistence(aof=aof, snapshots=bool(text.strip()))


def warn_without_persistence(client: redis.Redis) -> Persistence:
    """Log one WARNING when Redis persists nothing (and an INFO line when it cannot tell)."""
    found = read_persistence(client)
    if found.none:
        log.warning("Redis keeps no data across a restart (no AOF, no RDB save points): a Redis restart loses "
                    "every sync run, checkpoint, approval and queued job. Run Redis with `appendonly yes`.")
    elif found.snapshots is None and not found.aof:
        log.info("Redis has AOF off and refused CONFIG GET save: could not tell whether it keeps RDB snapshots; "
                 "make sure it persists its data (`appendonly yes`).")
    return found
