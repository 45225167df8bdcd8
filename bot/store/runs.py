"""Sync runs in Redis beyond the run record: checkpoints, the cancel flag, in-flight batches, the
failure ledger, the active-run index, delta links, `modifiedon` watermarks and the incremental schedule.

How a checkpoint advances is the sync's business (`bot.sync.checkpoint`); this module only
reads and writes the records, inside the one optimistic transaction when they must change together.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Generic, TypeVar, cast

import redis
from pydantic import BaseModel, Field
from redis.client import Pipeline

from bot.models import MODIFIED_ON, SyncRun
from bot.store.connection import as_text
from bot.store.keys import Keys
from bot.store.locks import Lease
from bot.store.transaction import transact

C = TypeVar("C", bound=BaseModel)
T = TypeVar("T")



class RunTx(Generic[C]):
    """One run's records inside a transaction: reads on the watching pipeline, then (after the
    body returns its writes) writes queued in MULTI on the same pipeline."""

    def __init__(self, pipe: Pipeline, keys: Keys, team_id: str, run_id: str, model: type[C]) -> None:
        self._pipe, self._keys, self._team, self._run, self._model = pipe, keys, team_id, run_id, model

    # -- reads --------------------------------------------------------------------------------------
    def run(self) -> SyncRun:
        raw = self._pipe.get(self._keys.run(self._team, self._run))
        if raw is None:
            raise LookupError(f"sync run {self._run} no longer exists")
        return SyncRun.model_validate_json(raw)

    def checkpoint(self, entity: str) -> C | None:
        raw = self._pipe.get(self._keys.checkpoint(self._team, self._run, entity))
        return self._model.model_validate_json(raw) if raw else None

    def cancel_requested(self) -> bool:
        return bool(self._pipe.exists(self._keys.run_cancel(self._team, self._run)))

    def holds(self, lease: Lease) -> bool:
        return lease.held_in(self._pipe)

    # -- writes ---------------------------------------------------------------------------------------
    def put_run(self, run: SyncRun) -> None:
        self._pipe.set(self._keys.run(self._team, self._run), run.model_dump_json())

    def put_checkpoint(self, entity: str, ckpt: C) -> None:
        self._pipe.set(self._keys.checkpoint(self._team, self._run, entity), ckpt.model_dump_json())

    def append_skips(self, rows: list[str]) -> None:
        if rows:
            self._pipe.rpush(self._keys.skips(self._team, self._run), *rows)

    def booked(self, entity: str, seq: int) -> None:
        """The batch is booked: no longer in flight."""
        self._pipe.srem(self._keys.inflight(self._team, self._run, entity), seq)


class RunRecords(Generic[C]):
    """Checkpoints (of model `model`), cancel flag and in-flight batches of one run."""

    def __init__(self, client: redis.Redis, keys: Keys, team_id: str, run_id: str, model: type[C]) -> None:
        self._redis, self._keys, self._team, self._run, self._model = client, keys, team_id, run_id, model

    def checkpoint(self, entity: str) -> C | None:
        raw = self._redis.get(self._keys.checkpoint(self._team, self._run, entity))
        return self._model.model_validate_json(raw) if raw else None

    def put_checkpoint(self, entity: str, ckpt: C) -> None:
        self._redis.set(self._keys.checkpoint(self._team, self._run, entity), ckpt.model_dump_json())

    def cancel_requested(self) -> bool:
        return bool(self._redis.exists(self._keys.run_cancel(self._team, self._run)))

    def request_cancel(self) -> None:
        self._redis.set(self._keys.run_cancel(self._team, self._run), "1")

    def mark_inflight(self, entity: str, seq: int) -> None:
        self._redis.sadd(self._keys.inflight(self._team, self._run, entity), seq)

    def inflight(self, entity: str) -> set[int]:
        return {int(m) for m in self._redis.smembers(self._keys.inflight(self._team, self._run, entity))}

    def transact(
        self,
        entities: list[str],
        body: Callable[[RunTx[C]], tuple[Callable[[RunTx[C]], None] | None, T]],
        lease: Lease | None = None,
    ) -> T:
        """One optimistic transaction over the run record, its cancel flag, the checkpoints of
        `entities` and (when given) the lease, so a booking commits only while the lease is held."""
        keys = [self._keys.run(self._team, self._run), self._keys.run_cancel(self._team, self._run)]
        keys += [self._keys.checkpoint(self._team, self._run, e) for e in entities]
        if lease is not None:
            keys.append(lease.key)

        def on_pipe(pipe: Pipeline) -> tuple[Callable[[Pipeline], object] | None, T]:
            tx = RunTx(pipe, self._keys, self._team, self._run, self._model)
            writes, result = body(tx)
            return (None if writes is None else (lambda _: writes(tx))), result

        return transact(self._redis, keys, on_pipe)


class SkipList:
    """The failure ledger of one run, read in chunks."""

    def __init__(self, client: redis.Redis, key: str) -> None:
        self._redis, self._key = client, key

    def count(self) -> int:
        return int(self._redis.llen(self._key))

    def chunk(self, start: int, size: int) -> list[bytes | str]:
        return self._redis.lrange(self._key, start, start + size - 1)


class ActiveRuns:
    """The runs the sweeper watches, as (team, run) pairs."""

    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        self._redis, self._key = client, keys.active_runs()

    def add(self, team_id: str, run_id: str) -> None:
        self._redis.sadd(self._key, f"{team_id}:{run_id}")

    def remove(self, team_id: str, run_id: str) -> None:
        self._redis.srem(self._key, f"{team_id}:{run_id}")

    def __contains__(self, team_run: tuple[str, str]) -> bool:
        return bool(self._redis.sismember(self._key, ":".join(team_run)))

    def all(self) -> list[tuple[str, str]]:
        pairs = (as_text(m).split(":", 1) for m in self._redis.smembers(self._key))
        return [(team, run) for team, run in pairs]


class DeltaLinks:
    """Dataverse change-tracking links per connection and entity, where incremental sync resumes."""

    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        self._redis, self._keys = client, keys

    def get(self, team_id: str, connection_id: str, entity: str) -> str | None:
        raw = self._redis.get(self._keys.delta_link(team_id, connection_id, entity))
        return as_text(raw) if raw else None

    def put(self, team_id: str, connection_id: str, entity: str, link: str) -> None:
        self._redis.set(self._keys.delta_link(team_id, connection_id, entity), link)

    def forget(self, team_id: str, connection_id: str, entity: str) -> None:
        self._redis.delete(self._keys.delta_link(team_id, connection_id, entity))

    def offer(self, team_id: str, connection_id: str, entity: str, link: str) -> None:
        """A link for the incremental cycles to switch to once they caught up (a finished backfill's)."""
        self._redis.set(self._keys.delta_offer(team_id, connection_id, entity), link)

    def offered(self, team_id: str, connection_id: str, entity: str) -> str | None:
        raw = self._redis.get(self._keys.delta_offer(team_id, connection_id, entity))
        return as_text(raw) if raw else None

    def accept(self, team_id: str, connection_id: str, entity: str, link: str) -> None:
        """The offered link becomes the entity's delta link, in one MULTI."""
        with self._redis.pipeline() as pipe:
            pipe.set(self._keys.delta_link(team_id, connection_id, entity), link)
            pipe.delete(self._keys.delta_offer(team_id, connection_id, entity))
            pipe.execute()


class Watermark(BaseModel):
    """Where the incremental sync of a table without change tracking resumes: the newest `modifiedon`
    applied (as Dataverse wrote it) and the ids applied at exactly that time, so that the next read
    (`modifiedon ge` the mark) skips them instead of writing them again."""

    modified_on: str
    ids: list[str] = Field(default_factory=list)

    def applied(self, record: dict[str, Any], primary_id: str) -> bool:
        """Written by an earlier cycle: modified exactly at the mark by a record applied then."""
        return record.get(MODIFIED_ON) == self.modified_on and str(record.get(primary_id)) in self.ids

    def advanced(self, records: list[dict[str, Any]], primary_id: str) -> Watermark:
        """A new mark, moved to the newest `modifiedon` of `records` (read oldest first)."""
        mark = self.model_copy(deep=True)
        for record in records:
            stamp, record_id = record.get(MODIFIED_ON), str(record.get(primary_id))
            if stamp is None or stamp < mark.modified_on:
                continue
            if stamp > mark.modified_on:
                mark = Watermark(modified_on=stamp)
            mark.ids.append(record_id)
        return mark


class Watermarks:
    """`modifiedon` watermarks per connection and entity (the delta link's stand-in without change tracking)."""

    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        self._redis, self._keys = client, keys

    def get(self, team_id: str, connection_id: str, entity: str) -> Watermark | None:
        raw = self._redis.get(self._keys.watermark(team_id, connection_id, entity))
        return Watermark.model_validate_json(raw) if raw else None

    def put(self, team_id: str, connection_id: str, entity: str, mark: Watermark) -> None:
        self._redis.set(self._keys.watermark(team_id, connection_id, entity), mark.model_dump_json())

    def forget(self, team_id: str, connection_id: str, entity: str) -> None:
        self._redis.delete(self._keys.watermark(team_id, connection_id, entity))


class IncrementalSchedule:
    """Connections due for an incremental sync (a sorted set by due time) and their running totals."""

    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        self._redis, self._keys, self._key = client, keys, keys.incremental_schedule()

    def schedule(self, team_id: str, connection_id: str, due: float) -> None:
        self._redis.zadd(self._key, {f"{team_id}:{connection_id}": due})

    def unschedule(self, team_id: str, connection_id: str) -> None:
        self._redis.zrem(self._key, f"{team_id}:{connection_id}")

    def due_at(self, team_id: str, connection_id: str) -> float | None:
        return self._redis.zscore(self._key, f"{team_id}:{connection_id}")

    def due(self, now: float) -> list[tuple[str, str]]:
        members = cast(list[bytes | str], self._redis.zrangebyscore(self._key, "-inf", now))  # no WITHSCORES
        pairs = (as_text(m).split(":", 1) for m in members)
        return [(team, connection) for team, connection in pairs]

    def advance(self, team_id: str, connection_id: str, next_due: float) -> bool:
        """Move the slot forward; atomic (ZADD GT CH), so of several workers only one sees True."""
        return bool(self._redis.zadd(self._key, {f"{team_id}:{connection_id}": next_due}, gt=True, ch=True))

    def record(self, team_id: str, connection_id: str, entity: str, counts: dict[str, int]) -> None:
        """Add one job's counts to the connection's totals, in one MULTI."""
        key = self._keys.incremental_stats(team_id, connection_id)
        with self._redis.pipeline() as pipe:
            now = time.time()
            pipe.hset(key, mapping={"last_at": now, f"{entity}:last_at": now})
            for name, value in counts.items():
                pipe.hincrby(key, f"{entity}:{name}", value)
            pipe.execute()

    def last_cycles(self) -> dict[str, float]:
        """Per entity, the oldest of its scheduled connections' newest successful cycle times."""
        scheduled = cast(list[bytes | str], self._redis.zrange(self._key, 0, -1))  # no WITHSCORES
        members = [as_text(m).split(":", 1) for m in scheduled]
        with self._redis.pipeline(transaction=False) as pipe:
            for team_id, connection_id in members:
                pipe.hgetall(self._keys.incremental_stats(team_id, connection_id))
            rows = pipe.execute()
        oldest: dict[str, float] = {}
        for row in rows:
            for field, value in row.items():
                entity, _, name = as_text(field).rpartition(":")
                if entity and name == "last_at":
                    oldest[entity] = min(oldest.get(entity, float("inf")), float(value))
        return oldest

    def stats(self, team_id: str, connection_id: str) -> dict[str, str]:
        raw = self._redis.hgetall(self._keys.incremental_stats(team_id, connection_id))
        return {as_text(k): as_text(v) for k, v in raw.items()}
