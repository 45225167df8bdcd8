"""The per-run ledger of records that did not make it into Marketo, with the reason.

Kept in Redis (a list per run), never in memory: a run of a million records with many
skips must still produce the whole report. Entries are appended only inside the checkpoint
transaction that books their batch, so a batch rewritten after a crash is never listed twice.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import redis
from pydantic import BaseModel

from bot.bounded_text import BoundedText
from bot.store import Store

READ_CHUNK = 1000


class LedgerEntry(BaseModel):
    """One record Marketo did not take. Every text is bounded: Marketo's reasons can be huge."""

    entity: str
    id: BoundedText
    email: BoundedText | None = None
    code: BoundedText
    message: BoundedText


class Ledger:
    def __init__(self, store: Store, team_id: str, run_id: str) -> None:
        self.redis = store.redis
        self.key = store.key(team_id, "run", run_id, "skips")

    def add_in(self, pipe: redis.client.Pipeline, entries: Iterable[LedgerEntry]) -> None:
        """Queue the entries on a pipeline already in MULTI (the booking transaction)."""
        rows = [entry.model_dump_json() for entry in entries]
        if rows:
            pipe.rpush(self.key, *rows)

    def count(self) -> int:
        return int(self.redis.llen(self.key))

    def __iter__(self) -> Iterator[LedgerEntry]:
        """Stream the entries in chunks, so memory stays flat however long the list is."""
        start = 0
        while True:
            rows = self.redis.lrange(self.key, start, start + READ_CHUNK - 1)
            for raw in rows:
                yield LedgerEntry.model_validate_json(raw)
            if len(rows) < READ_CHUNK:
                return
            start += READ_CHUNK
