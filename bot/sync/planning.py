"""Step 2's record counts: per entity, with the custom sync filter applied when it exists."""

from __future__ import annotations

from bot.dynamics.client import DataverseClient
from bot.models import SYNC_FILTER_ATTRIBUTE, Entity, EntityMetadata
from bot.sync.mapping import detect_sync_filter


def count_records(client: DataverseClient, metadata: dict[Entity, EntityMetadata]) -> dict[Entity, int]:
    """How many records each entity would sync (the plan shows these, and the progress bars use them)."""
    return {
        entity: client.count(entity, filter_attribute=SYNC_FILTER_ATTRIBUTE if detect_sync_filter(meta).applies else None)
        for entity, meta in metadata.items()
    }
