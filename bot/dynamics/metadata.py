"""Entity metadata and the list of custom tables, cached in Redis, so that the field picker's
`block_suggestion` answers within 3 s and Step 2 opens without re-reading Dataverse's metadata."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from bot.dynamics.custom_tables import CustomTableMeta
from bot.models import Entity, EntityMetadata
from bot.store import Store

T = TypeVar("T")
CUSTOM_TABLES = "custom-tables"  # the custom tables' cache slot, beside the entities' (no logical name has "-")


class MetadataSource(Protocol):
    def entity_metadata(self, entity: Entity | str) -> EntityMetadata: ...


class CustomTableSource(Protocol):
    def custom_tables(self) -> list[CustomTableMeta]: ...


class MetadataCache:
    def __init__(self, store: Store, ttl: int = 3600) -> None:
        self._store = store
        self.ttl = ttl

    def get(
        self,
        team_id: str,
        connection_id: str,
        client: MetadataSource,
        entity: Entity | str,
        refresh: bool = False,
    ) -> EntityMetadata:
        """The cached metadata, or fresh from Dataverse (and cached) when missing or `refresh`."""
        return self._through(team_id, connection_id, Entity(entity).value, refresh,
                             lambda: client.entity_metadata(Entity(entity)),
                             lambda metadata: metadata.model_dump(mode="json"), EntityMetadata.model_validate)

    def custom_tables(self, team_id: str, connection_id: str, client: CustomTableSource,
                      refresh: bool = False) -> list[CustomTableMeta]:
        """The custom tables with their lookups (no columns), cached like an entity's metadata: reading them
        takes one request per table."""
        return self._through(team_id, connection_id, CUSTOM_TABLES, refresh, client.custom_tables,
                             lambda tables: [t.model_dump(mode="json") for t in tables],
                             lambda raw: [CustomTableMeta.model_validate(t) for t in raw])

    def _through(self, team_id: str, connection_id: str, name: str, refresh: bool, fetch: Callable[[], T],
                 dump: Callable[[T], Any], load: Callable[[Any], T]) -> T:
        if not refresh:
            raw = self._store.cached_metadata(team_id, connection_id, name)
            if raw is not None:
                return load(raw)
        fresh = fetch()
        self._store.cache_metadata(team_id, connection_id, name, dump(fresh), self.ttl)
        return fresh

    def cached(self, team_id: str, connection_id: str, entity: Entity | str) -> EntityMetadata | None:
        """What Redis holds, without touching the network."""
        raw = self._store.cached_metadata(team_id, connection_id, Entity(entity).value)
        return EntityMetadata.model_validate(raw) if raw else None

    def forget(self, team_id: str, connection_id: str, entity: Entity | str) -> None:
        self._store.forget_metadata(team_id, connection_id, Entity(entity).value)
