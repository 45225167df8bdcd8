"""The Marketo → Dynamics write-back's records: where it stands in Marketo's activity log, what its
last run did, and the collisions it settled (the `conflicts` command shows them).

The paging token is saved after each applied page, so a worker killed mid-cycle repeats only the
page in flight. Collisions are kept per entity, newest first, at most `CONFLICTS_KEPT` each. The
`requestId`s of our Marketo writes (`MarketoWrites`, shared by every worker) are kept for
`REQUESTS_KEPT_SECONDS`, longer than any write-back lags behind.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Sequence

import redis
from pydantic import BaseModel, Field

from bot.bounded_text import BoundedText
from bot.models import Side
from bot.store.connection import as_text
from bot.store.keys import Keys

CONFLICTS_KEPT = 1000
REQUESTS_KEPT_SECONDS = 7 * 86_400


class Conflict(BaseModel):
    """The same field changed on both sides since the last cycle, and how it was settled."""

    entity: str
    record_id: BoundedText
    field: BoundedText  # the Marketo field name
    marketo_value: BoundedText | None = None
    dynamics_value: BoundedText | None = None
    winner: Side
    at: float


class WriteBackRun(BaseModel):
    """What the write-back's last run did (counts of field changes unless named otherwise)."""

    at: float
    status: str
    counts: dict[str, int] = Field(default_factory=dict)


class WriteBackRecords:
    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        self._redis, self._keys = client, keys

    # -- the position in Marketo's activity log -------------------------------------------------------
    def token(self, team_id: str, connection_id: str) -> str | None:
        raw = self._redis.get(self._keys.write_back_token(team_id, connection_id))
        return None if raw is None else as_text(raw)

    def save_token(self, team_id: str, connection_id: str, token: str) -> None:
        self._redis.set(self._keys.write_back_token(team_id, connection_id), token)

    # -- the last run ------------------------------------------------------------------------------------
    def record_run(self, team_id: str, connection_id: str, run: WriteBackRun) -> None:
        self._redis.set(self._keys.write_back_stats(team_id, connection_id), run.model_dump_json())

    def last_run(self, team_id: str, connection_id: str) -> WriteBackRun | None:
        raw = self._redis.get(self._keys.write_back_stats(team_id, connection_id))
        return None if raw is None else WriteBackRun.model_validate_json(raw)

    # -- records the Dynamics → Marketo cycle must still send -------------------------------------------
    def hand_over(self, team_id: str, connection_id: str, entity: str, ids: Sequence[str]) -> None:
        if ids:
            self._redis.sadd(self._keys.write_back_handed_over(team_id, connection_id, entity), *ids)

    def take_handed_over(self, team_id: str, connection_id: str, entity: str, ids: Sequence[str]) -> set[str]:
        """Those of `ids` handed over, taken off the set."""
        if not ids:
            return set()
        key = self._keys.write_back_handed_over(team_id, connection_id, entity)
        handed = {i for i, member in zip(ids, self._redis.smismember(key, list(ids)), strict=True) if member}
        if handed:
            self._redis.srem(key, *handed)
        return handed

    # -- collisions --------------------------------------------------------------------------------------
    def add_conflicts(self, team_id: str, connection_id: str, conflicts: Sequence[Conflict]) -> None:
        if not conflicts:
            return
        pipe = self._redis.pipeline(transaction=True)
        for entity in dict.fromkeys(c.entity for c in conflicts):
            key = self._keys.conflicts(team_id, connection_id, entity)
            pipe.lpush(key, *[c.model_dump_json() for c in conflicts if c.entity == entity])
            pipe.ltrim(key, 0, CONFLICTS_KEPT - 1)
        pipe.execute()

    def conflicts(self, team_id: str, connection_id: str, entities: Sequence[str], limit: int) -> list[Conflict]:
        """The `limit` newest collisions over `entities`, newest first."""
        found: list[Conflict] = []
        for entity in entities:
            raw = self._redis.lrange(self._keys.conflicts(team_id, connection_id, entity), 0, limit - 1)
            found.extend(Conflict.model_validate_json(item) for item in raw)
        return sorted(found, key=lambda c: c.at, reverse=True)[:limit]

    def count_conflicts(self, team_id: str, connection_id: str, entities: Sequence[str]) -> int:
        return sum(int(self._redis.llen(self._keys.conflicts(team_id, connection_id, e))) for e in entities)


class MarketoWrites:
    """The `requestId`s of this product's Marketo lead writes (the client's `WriteLog`)."""

    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        self._redis, self._key = client, keys.marketo_write_requests()

    def remember(self, request_id: str) -> None:
        now = time.time()
        pipe = self._redis.pipeline(transaction=False)
        pipe.zadd(self._key, {request_id: now})
        pipe.zremrangebyscore(self._key, "-inf", now - REQUESTS_KEPT_SECONDS)
        pipe.execute()

    def ours(self, request_ids: Collection[str]) -> set[str]:
        """Those of `request_ids` that our writes had."""
        wanted = list(request_ids)
        if not wanted:
            return set()
        scores = self._redis.zmscore(self._key, wanted)
        return {request_id for request_id, score in zip(wanted, scores, strict=True) if score is not None}
