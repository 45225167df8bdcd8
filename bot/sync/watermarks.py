"""Where a table without change tracking is first read from by its `modifiedon` watermark."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any, Protocol

from bot.models import Connection
from bot.store import Store, Watermark


class _Page(Protocol):
    records: list[dict[str, Any]]


# The first watermark is the initial run's start, this much earlier in case the clocks of this
# server and Dataverse differ; the few records changed in between are written once more (harmless).
CLOCK_SKEW_SECONDS = 300


def first_watermark(store: Store, connection: Connection) -> Watermark | None:
    """The connection's last full read started at `started_at`: anything modified since may be newer in Dynamics."""
    run = store.get_run(connection.team_id, connection.run_id) if connection.run_id else None
    if run is None:
        return None
    since = datetime.fromtimestamp(run.started_at - CLOCK_SKEW_SECONDS, UTC)
    return Watermark(modified_on=since.strftime("%Y-%m-%dT%H:%M:%SZ"))


def fresh_pages(pages: Iterable[_Page], start: Watermark, primary_id: str) -> Iterator[tuple[list[dict], Watermark]]:
    """Pages read by `modifiedon` from `start`: each one's records not applied at `start` already, and the
    watermark past them (the caller keeps the last one it wrote)."""
    mark = start
    for page in pages:
        fresh = [record for record in page.records if not start.applied(record, primary_id)]
        mark = mark.advanced(fresh, primary_id)
        yield fresh, mark
