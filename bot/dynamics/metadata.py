"""Entity metadata cached in Redis, so the field picker's `block_suggestion` answers within 3 s."""

from __future__ import annotations

from typing import Protocol

from bot.models import Entity, EntityMetadata
from bot.store import Store


class MetadataSource(Protocol):
    def entity_metadata(self, entity: Entity | str) -> EntityMetadata: ...


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
        if not refresh:
            cached = self.cached(team_id, connection_id, entity)
            if cached is not None:
                return cached
        metadata = client.entity_metadata(Entity(entity))
        self._store.cache_metadata(team_id, connection_id, Entity(entity).value, metadata.model_dump(mode="json"), self.ttl)
        return metadata

    def cached(self, team_id: str, connection_id: str, entity: Entity | str) -> EntityMetadata | None:
        """What Redis holds, without touching the network."""
        raw = self._store.cached_metadata(team_id, connection_id, Entity(entity).value)
        return EntityMetadata.model_validate(raw) if raw else None

    def forget(self, team_id: str, connection_id: str, entity: Entity | str) -> None:
        self._store.forget_metadata(team_id, connection_id, Entity(entity).value)
