"""The ongoing (incremental) sync's status in Redis: the figures its cycles record, and its on/off switch.

Per connection and entity, a small hash of figures (last successful cycle, the time Marketo is
caught up to, the newest change applied, the backlog of the cycle running now) and a time series of
records written per minute: a hash of minute → count whose fields older than a day are dropped at
the end of each cycle (and the whole key expires 25 hours after its last write), so "last hour" and
"last 24 h" are sums of at most 1,440 small fields. Status reads everything in one pipeline.
"""

from __future__ import annotations

from enum import StrEnum

import redis
from pydantic import BaseModel
from redis.client import Pipeline
from redis.typing import EncodableT, FieldT

from bot.store.connection import as_text
from bot.store.keys import Keys
from bot.store.transaction import Writes, transact

MINUTE = 60
HOUR_MINUTES = 60
DAY_MINUTES = 24 * 60
# The series outlives its last write by a day and a little, so an idle connection's figures vanish by themselves.
SERIES_TTL_SECONDS = (DAY_MINUTES + HOUR_MINUTES) * MINUTE



def minute_of(at: float) -> int:
    return int(at // MINUTE)


class ChangeTime(StrEnum):
    """Where the time of the newest change applied comes from."""

    modified_on = "modifiedon"  # the record's own `modifiedon`, as Dynamics wrote it
    read_time = "read time"  # the record carried no `modifiedon`: the time its cycle started reading


class OngoingSwitch(BaseModel):
    """Whether the ongoing sync runs, and who turned it on or off last."""

    enabled: bool
    by: str
    at: float


class EntityFigures(BaseModel):
    """What the status shows for one entity of the ongoing sync."""

    entity: str
    last_cycle_at: float | None = None  # the end of the last cycle that applied every change it read
    caught_up_at: float | None = None  # that cycle's read time: every change made before it is in Marketo
    newest_change_at: float | None = None
    newest_change_from: ChangeTime | None = None
    backlog: int = 0  # read by the cycle running now, not yet written
    written_last_hour: int = 0
    written_last_day: int = 0
    pending_failures: int = 0


class OngoingFigures(BaseModel):
    switch: OngoingSwitch | None = None  # None: never switched, so on
    next_cycle_at: float | None = None  # None: not scheduled
    entities: list[EntityFigures]

    @property
    def enabled(self) -> bool:
        return self.switch is None or self.switch.enabled


class OngoingRecords:
    """The figures of the ongoing sync's cycles and its switch, per connection (and entity)."""

    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        self._redis, self._keys = client, keys

    # -- the switch ------------------------------------------------------------------------------------
    def switch(self, team_id: str, connection_id: str) -> OngoingSwitch | None:
        raw = self._redis.get(self._keys.ongoing_switch(team_id, connection_id))
        return OngoingSwitch.model_validate_json(raw) if raw else None

    def enabled(self, team_id: str, connection_id: str) -> bool:
        switch = self.switch(team_id, connection_id)
        return switch is None or switch.enabled

    def set_switch(self, team_id: str, connection_id: str, switch: OngoingSwitch) -> bool:
        """Turn the ongoing sync on or off; False (and nothing written) when it already was so.
        In the one optimistic transaction, so of two admins at once only one changes it."""
        key = self._keys.ongoing_switch(team_id, connection_id)

        def body(pipe: Pipeline) -> tuple[Writes | None, bool]:
            raw = pipe.get(key)
            enabled = raw is None or OngoingSwitch.model_validate_json(raw).enabled
            if enabled == switch.enabled:
                return None, False
            return (lambda p: p.set(key, switch.model_dump_json())), True

        return transact(self._redis, [key], body)

    # -- what the cycles record ----------------------------------------------------------------------------
    def clear_backlog(self, team_id: str, connection_id: str, entity: str) -> None:
        """Nothing in flight: the cycle stopped before applying all it read (switched off, lost its lease,
        failed); its changes are read again from the kept delta link or watermark."""
        self._redis.hset(self._keys.ongoing_figures(team_id, connection_id, entity), "backlog", 0)

    def page_read(self, team_id: str, connection_id: str, entity: str, changes: int) -> None:
        """A cycle read a page of `changes`: its backlog until written (a cycle reads the next page only
        after writing this one)."""
        self._redis.hset(self._keys.ongoing_figures(team_id, connection_id, entity), "backlog", changes)

    def page_done(self, team_id: str, connection_id: str, entity: str, written: int, at: float) -> bool:
        """The page read last is handled, `written` of its records written to Marketo at `at`; in the same
        round trip, says whether the ongoing sync is still on (a cycle stops after the page when not)."""
        series = self._keys.ongoing_written(team_id, connection_id, entity)
        with self._redis.pipeline(transaction=False) as pipe:
            pipe.hset(self._keys.ongoing_figures(team_id, connection_id, entity), "backlog", 0)
            if written:
                pipe.hincrby(series, str(minute_of(at)), written)
                pipe.expire(series, SERIES_TTL_SECONDS)
            pipe.get(self._keys.ongoing_switch(team_id, connection_id))
            raw = pipe.execute()[-1]
        return raw is None or OngoingSwitch.model_validate_json(raw).enabled

    def cycle_finished(self, team_id: str, connection_id: str, entity: str, *, at: float, read_at: float,
                       newest_change_at: float | None, newest_change_from: ChangeTime) -> None:
        """Every change the cycle read is applied: Marketo is caught up to `read_at`."""
        figures: dict[FieldT, EncodableT] = {"last_cycle_at": at, "caught_up_at": read_at, "backlog": 0}
        if newest_change_at is not None:
            figures |= {"newest_change_at": newest_change_at, "newest_change_from": newest_change_from.value}
        self._redis.hset(self._keys.ongoing_figures(team_id, connection_id, entity), mapping=figures)
        self.trim(team_id, connection_id, entity, at)

    def caught_up_at(self, team_id: str, connection_id: str, entity: str) -> float | None:
        """The time the entity's last finished cycle caught Marketo up to (None before the first)."""
        raw = self._redis.hget(self._keys.ongoing_figures(team_id, connection_id, entity), "caught_up_at")
        return float(as_text(raw)) if raw is not None else None

    def trim(self, team_id: str, connection_id: str, entity: str, now: float) -> None:
        """Drop the minutes of the series older than a day."""
        series = self._keys.ongoing_written(team_id, connection_id, entity)
        oldest = minute_of(now) - DAY_MINUTES
        stale = [field for field in self._redis.hkeys(series) if int(field) <= oldest]
        if stale:
            self._redis.hdel(series, *stale)

    # -- what the status reads -------------------------------------------------------------------------------
    def figures(self, team_id: str, connection_id: str, entities: list[str], now: float) -> OngoingFigures:
        """Everything the status shows but failures (`Store.pending_failures`), in one round trip."""
        with self._redis.pipeline(transaction=False) as pipe:
            pipe.get(self._keys.ongoing_switch(team_id, connection_id))
            pipe.zscore(self._keys.incremental_schedule(), f"{team_id}:{connection_id}")
            for entity in entities:
                pipe.hgetall(self._keys.ongoing_figures(team_id, connection_id, entity))
                pipe.hgetall(self._keys.ongoing_written(team_id, connection_id, entity))
            raw_switch, due, *rest = pipe.execute()
        current = minute_of(now)
        rows = [_entity_figures(entity, rest[2 * i], rest[2 * i + 1], current) for i, entity in enumerate(entities)]
        return OngoingFigures(switch=OngoingSwitch.model_validate_json(raw_switch) if raw_switch else None,
                              next_cycle_at=due, entities=rows)


def _entity_figures(entity: str, raw: dict, series: dict, current_minute: int) -> EntityFigures:
    figures = {as_text(k): as_text(v) for k, v in raw.items()}
    hour = day = 0
    for field, count in series.items():
        age = current_minute - int(field)
        if 0 <= age < DAY_MINUTES:
            day += int(count)
            hour += int(count) if age < HOUR_MINUTES else 0

    def stamp(name: str) -> float | None:
        return float(figures[name]) if name in figures else None

    return EntityFigures(
        entity=entity, last_cycle_at=stamp("last_cycle_at"), caught_up_at=stamp("caught_up_at"),
        newest_change_at=stamp("newest_change_at"),
        newest_change_from=ChangeTime(figures["newest_change_from"]) if "newest_change_from" in figures else None,
        backlog=max(0, int(figures.get("backlog", 0))), written_last_hour=hour, written_last_day=day)

