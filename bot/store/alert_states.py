"""Per connection, the state of each alert condition (ok or alerting, since when, the alert's message).

A post to Slack happens only when a condition changes state, and several workers observe the same
condition at once (one job per entity, the maintenance thread): the change is decided inside the one
optimistic transaction, so exactly one observer sees it and posts.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum

import redis
from pydantic import BaseModel
from redis.client import Pipeline

from bot.store.connection import as_text
from bot.store.keys import Keys
from bot.store.transaction import transact


class Level(StrEnum):
    ok = "ok"
    alerting = "alerting"


class AlertState(BaseModel):
    level: Level = Level.ok
    since: float = 0.0
    message_ts: str | None = None  # the alert's post, while alerting


class AlertStates:
    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        self._redis, self._keys = client, keys

    def get(self, team_id: str, connection_id: str, condition: str) -> AlertState:
        raw = self._redis.hget(self._keys.alert_state(team_id, connection_id), condition)
        return AlertState.model_validate_json(raw) if raw else AlertState()

    def all(self, team_id: str, connection_id: str) -> dict[str, AlertState]:
        raw = self._redis.hgetall(self._keys.alert_state(team_id, connection_id))
        return {as_text(k): AlertState.model_validate_json(v) for k, v in raw.items()}

    def change(self, team_id: str, connection_id: str, condition: str, level: Level, now: float) -> AlertState | None:
        """Move `condition` to `level`; returns the state it left, or None when it was there already."""
        key = self._keys.alert_state(team_id, connection_id)

        def body(pipe: Pipeline) -> tuple[Callable[[Pipeline], object] | None, AlertState | None]:
            raw = pipe.hget(key, condition)
            current = AlertState.model_validate_json(raw) if raw else AlertState()
            if current.level == level:
                return None, None
            entered = AlertState(level=level, since=now).model_dump_json()
            return (lambda p: p.hset(key, condition, entered)), current

        return transact(self._redis, [key], body)

    def note_message(self, team_id: str, connection_id: str, condition: str, ts: str) -> None:
        """Remember the alert's message (only while the condition is still alerting)."""
        key = self._keys.alert_state(team_id, connection_id)

        def body(pipe: Pipeline) -> tuple[Callable[[Pipeline], object] | None, None]:
            raw = pipe.hget(key, condition)
            current = AlertState.model_validate_json(raw) if raw else AlertState()
            if current.level != Level.alerting:
                return None, None
            noted = current.model_copy(update={"message_ts": ts}).model_dump_json()
            return (lambda p: p.hset(key, condition, noted)), None

        transact(self._redis, [key], body)
