"""The error list of the ongoing sync: one entry per failed record, like Marketo's Sync Errors tab.

Entries are keyed by (entity, record id), so a record that fails again updates its entry (reason,
last failure, attempts) instead of adding one. Per connection and entity there is a hash of the
entries, a sorted set by last failure time ("most recent first", `since`) and one by attempts made
(the retry queue: what is below the bound is retried by the next cycle). Nothing leaves the list
except through `resolve` (or `resolve_all`), which counts why it left.

Failures of the Marketo → Dynamics write-back (`Direction.to_dynamics`) are kept in lists of their
own, so a record failing both ways has two entries and the Dynamics → Marketo retries never pick
them up; the reads (`count`, `recent`, `iter_errors`, `pending_failures`) cover both directions.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from enum import StrEnum
from typing import NamedTuple, cast

import redis
from pydantic import BaseModel
from redis.client import Pipeline

from bot.bounded_text import BoundedText
from bot.models import Direction
from bot.store.connection import as_text
from bot.store.keys import Keys
from bot.store.transaction import transact

READ_CHUNK = 500  # entries read, or ids settled, per Redis round trip


class SyncError(BaseModel):
    """One record the ongoing sync could not write (texts from Dynamics and Marketo are bounded)."""

    entity: str
    id: BoundedText
    email: BoundedText | None = None
    code: BoundedText = ""
    reason: BoundedText
    first_failed_at: float
    last_failed_at: float
    attempts: int = 1
    direction: Direction = Direction.to_marketo


class FailedRecord(NamedTuple):
    """What a cycle learned about one record that failed."""

    id: str
    email: str | None
    code: str
    reason: str
    direction: Direction = Direction.to_marketo


class Resolution(StrEnum):
    """Why an entry left the error list."""

    retried_ok = "retried_ok"  # written on a later attempt (a retry or a new change)
    deleted = "deleted"  # deleted in Dynamics: nothing left to write
    excluded = "excluded"  # no longer passes the sync filter: not synced any more
    table_removed = "table_removed"  # its custom table was taken out of the sync: never written again


DIRECTIONS = (Direction.to_marketo, Direction.to_dynamics)


def list_name(entity: str, direction: Direction) -> str:
    """The error list of `entity` in `direction` (Dynamics → Marketo keeps the entity's plain name)."""
    return entity if direction == Direction.to_marketo else f"{entity}-{direction.value}"


class SyncErrors:
    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        self._redis, self._keys = client, keys

    def _names(self, team_id: str, connection_id: str, entity: str,
               direction: Direction = Direction.to_marketo) -> tuple[str, str, str]:
        k, entity = self._keys, list_name(entity, direction)
        return (k.sync_errors(team_id, connection_id, entity), k.sync_errors_by_time(team_id, connection_id, entity),
                k.sync_errors_retry(team_id, connection_id, entity))

    # -- writes ---------------------------------------------------------------------------------------
    def book(self, team_id: str, connection_id: str, entity: str, failures: Sequence[FailedRecord],
             now: float) -> None:
        """Add new failures, or count one more attempt on records already listed."""
        for direction in DIRECTIONS:
            # listed twice: its last reason
            latest = list({f.id: f for f in failures if f.direction == direction}.values())
            for start in range(0, len(latest), READ_CHUNK):
                self._book(team_id, connection_id, entity, latest[start:start + READ_CHUNK], now, direction)

    def _book(self, team_id: str, connection_id: str, entity: str, failures: list[FailedRecord], now: float,
              direction: Direction) -> None:
        entries_key, by_time, retry = self._names(team_id, connection_id, entity, direction)
        latest = {failure.id: failure for failure in failures}

        def body(pipe: Pipeline) -> tuple[Callable[[Pipeline], object], None]:
            ids = list(latest)
            current = dict(zip(ids, pipe.hmget(entries_key, ids), strict=True))
            entries = [self._next(entity, latest[record_id], current[record_id], now) for record_id in ids]

            def writes(p: Pipeline) -> None:
                p.hset(entries_key, mapping={e.id: e.model_dump_json() for e in entries})
                p.zadd(by_time, {e.id: e.last_failed_at for e in entries})
                p.zadd(retry, {e.id: e.attempts for e in entries})

            return writes, None

        transact(self._redis, [entries_key], body)

    @staticmethod
    def _next(entity: str, failure: FailedRecord, raw: bytes | str | None, now: float) -> SyncError:
        """The entry after one more failure of its record (a new entry on the first)."""
        first, attempts, email = now, 1, failure.email
        if raw is not None:
            entry = SyncError.model_validate_json(raw)
            first, attempts, email = entry.first_failed_at, entry.attempts + 1, failure.email or entry.email
        return SyncError(entity=entity, id=failure.id, email=email, code=failure.code, reason=failure.reason,
                         first_failed_at=first, last_failed_at=now, attempts=attempts, direction=failure.direction)

    def resolve(self, team_id: str, connection_id: str, entity: str, ids: Sequence[str],
                resolution: Resolution, direction: Direction = Direction.to_marketo) -> int:
        """Take the listed ones of `ids` off the list, counted under `resolution`; returns how many."""
        unique = list(dict.fromkeys(ids))
        return sum(self._resolve(team_id, connection_id, entity, unique[start:start + READ_CHUNK], resolution,
                                 direction)
                   for start in range(0, len(unique), READ_CHUNK))

    def resolve_all(self, team_id: str, connection_id: str, entity: str, resolution: Resolution) -> int:
        """Take every entry of `entity` off the list, both directions, counted under `resolution` (a table no
        longer synced: its records would stay listed and never be retried); returns how many."""
        resolved = 0
        for direction in DIRECTIONS:
            by_time = self._names(team_id, connection_id, entity, direction)[1]
            while ids := [as_text(i) for i in cast(list[bytes], self._redis.zrange(by_time, 0, READ_CHUNK - 1))]:
                taken = self._resolve(team_id, connection_id, entity, ids, resolution, direction)
                if not taken:
                    break
                resolved += taken
        return resolved

    def _resolve(self, team_id: str, connection_id: str, entity: str, unique: list[str],
                 resolution: Resolution, direction: Direction) -> int:
        entries_key, by_time, retry = self._names(team_id, connection_id, entity, direction)
        counters = self._keys.sync_errors_resolved(team_id, connection_id)

        def body(pipe: Pipeline) -> tuple[Callable[[Pipeline], object] | None, int]:
            listed = [i for i, raw in zip(unique, pipe.hmget(entries_key, unique), strict=True) if raw is not None]
            if not listed:
                return None, 0

            def writes(p: Pipeline) -> None:
                p.hdel(entries_key, *listed)
                p.zrem(by_time, *listed)
                p.zrem(retry, *listed)
                p.hincrby(counters, f"{list_name(entity, direction)}:{resolution.value}", len(listed))

            return writes, len(listed)

        return transact(self._redis, [entries_key], body)

    # -- reads ----------------------------------------------------------------------------------------
    def _entries(self, entries_key: str, ids: list[bytes | str]) -> list[SyncError]:
        if not ids:
            return []
        return [SyncError.model_validate_json(raw) for raw in self._redis.hmget(entries_key, ids) if raw]

    def retry_candidates(self, team_id: str, connection_id: str, entity: str, max_attempts: int,
                         limit: int, direction: Direction = Direction.to_marketo) -> list[SyncError]:
        """Up to `limit` entries with fewer than `max_attempts` attempts, the least tried first."""
        entries_key, _, retry = self._names(team_id, connection_id, entity, direction)
        ids = cast(list[bytes | str], self._redis.zrangebyscore(retry, "-inf", max_attempts - 1, start=0, num=limit))
        return self._entries(entries_key, ids)

    def never_retry(self, team_id: str, connection_id: str, entity: str, ids: Sequence[str], max_attempts: int,
                    direction: Direction = Direction.to_marketo) -> None:
        """Keep these entries as errors without retrying them (a change a team lead discarded)."""
        if ids:
            _, _, retry = self._names(team_id, connection_id, entity, direction)
            self._redis.zadd(retry, dict.fromkeys(ids, max_attempts), xx=True)

    def pending_failures(self, team_id: str, connection_id: str, entity: str) -> int:
        """Records of `entity` on the error list (still retried or kept as permanent errors)."""
        return sum(int(self._redis.hlen(self._names(team_id, connection_id, entity, d)[0])) for d in DIRECTIONS)

    def count(self, team_id: str, connection_id: str, entities: Sequence[str], since: float | None = None) -> int:
        low = "-inf" if since is None else since
        return sum(int(self._redis.zcount(self._names(team_id, connection_id, e, d)[1], low, "+inf"))
                   for e in entities for d in DIRECTIONS)

    def permanent(self, team_id: str, connection_id: str, entity: str, max_attempts: int) -> int:
        """Records past the retry bound (kept as errors, no longer retried)."""
        retry = self._keys.sync_errors_retry(team_id, connection_id, entity)
        return int(self._redis.zcount(retry, max_attempts, "+inf"))

    def recent(self, team_id: str, connection_id: str, entities: Sequence[str], since: float | None,
               limit: int) -> list[SyncError]:
        """The `limit` most recent failures over `entities`, newest first."""
        found: list[SyncError] = []
        for entity in entities:
            for direction in DIRECTIONS:
                found.extend(self._newest(team_id, connection_id, entity, since, 0, limit, direction))
        return sorted(found, key=lambda e: e.last_failed_at, reverse=True)[:limit]

    def _newest(self, team_id: str, connection_id: str, entity: str, since: float | None, start: int,
                size: int, direction: Direction = Direction.to_marketo) -> list[SyncError]:
        entries_key, by_time, _ = self._names(team_id, connection_id, entity, direction)
        ids = cast(list[bytes | str], self._redis.zrevrangebyscore(by_time, "+inf", "-inf" if since is None else since,
                                                                   start=start, num=size))
        return self._entries(entries_key, ids)

    def iter_errors(self, team_id: str, connection_id: str, entities: Sequence[str],
                    since: float | None = None) -> Iterator[SyncError]:
        """Every entry of `entities`, entity by entity (each direction in turn) and newest first, read in
        chunks (flat memory)."""
        for entity in entities:
            for direction in DIRECTIONS:
                start = 0
                while True:
                    chunk = self._newest(team_id, connection_id, entity, since, start, READ_CHUNK, direction)
                    yield from chunk
                    if len(chunk) < READ_CHUNK:
                        break
                    start += READ_CHUNK

    def resolved_counts(self, team_id: str, connection_id: str) -> dict[str, int]:
        raw = self._redis.hgetall(self._keys.sync_errors_resolved(team_id, connection_id))
        return {as_text(k): int(v) for k, v in raw.items()}
