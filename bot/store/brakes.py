"""The mass-change brake's records: one `MassChangeHold` per connection and entity while a cycle is held
or its decision waits for the next cycle. Decisions go through the one optimistic transaction."""

from __future__ import annotations

from collections.abc import Callable

import redis
from redis.client import Pipeline

from bot.models import Entity, MassChangeHold
from bot.store.connection import as_text
from bot.store.keys import Keys
from bot.store.transaction import Writes, transact

IDS_CHUNK = 1000


class MassChangeHolds:
    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        self._redis, self._keys = client, keys

    def _key(self, team_id: str, connection_id: str, entity: str) -> str:
        return self._keys.mass_change_hold(team_id, connection_id, entity)

    def get(self, team_id: str, connection_id: str, entity: str) -> MassChangeHold | None:
        raw = self._redis.get(self._key(team_id, connection_id, entity))
        return MassChangeHold.model_validate_json(raw) if raw else None

    def of_connection(self, team_id: str, connection_id: str) -> list[MassChangeHold]:
        return [hold for entity in Entity if (hold := self.get(team_id, connection_id, entity.value)) is not None]

    def _ids_key(self, hold: MassChangeHold) -> str:
        return self._keys.mass_change_ids(hold.team_id, hold.connection_id, hold.entity.value)

    def put(self, hold: MassChangeHold, held_ids: list[str]) -> None:
        """A new hold and the ids of the records it holds (replacing any earlier hold of the entity)."""
        ids_key = self._ids_key(hold)
        with self._redis.pipeline() as pipe:
            pipe.set(self._key(hold.team_id, hold.connection_id, hold.entity.value), hold.model_dump_json())
            pipe.delete(ids_key)
            for start in range(0, len(held_ids), IDS_CHUNK):
                pipe.sadd(ids_key, *held_ids[start:start + IDS_CHUNK])
            pipe.execute()

    def held_ids(self, hold: MassChangeHold) -> frozenset[str]:
        return frozenset(as_text(raw)
                         for raw in self._redis.sscan_iter(self._ids_key(hold), count=IDS_CHUNK))

    def update(self, team_id: str, connection_id: str, entity: str,
               change: Callable[[MassChangeHold], MassChangeHold | None]) -> tuple[MassChangeHold | None, bool]:
        """Atomically change the record: (the stored record, whether `change` changed it)."""
        key = self._key(team_id, connection_id, entity)

        def body(pipe: Pipeline) -> tuple[Writes | None, tuple[MassChangeHold | None, bool]]:
            raw = pipe.get(key)
            if raw is None:
                return None, (None, False)
            current = MassChangeHold.model_validate_json(raw)
            changed = change(current)
            if changed is None:
                return None, (current, False)
            return (lambda p: p.set(key, changed.model_dump_json())), (changed, True)

        return transact(self._redis, [key], body)

    def clear(self, consumed: MassChangeHold) -> bool:
        """Remove a decided record once a cycle acted on it; a newer record (held since) stays."""
        key = self._key(consumed.team_id, consumed.connection_id, consumed.entity.value)

        def body(pipe: Pipeline) -> tuple[Writes | None, bool]:
            raw = pipe.get(key)
            if raw is None or MassChangeHold.model_validate_json(raw) != consumed:
                return None, False
            return (lambda p: p.delete(key, self._ids_key(consumed))), True

        return transact(self._redis, [key], body)
