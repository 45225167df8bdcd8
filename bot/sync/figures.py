"""What an incremental cycle tells the status as it goes: its backlog page by page, the records it
wrote per minute, and at its end the time Marketo is caught up to and the newest change applied.

The newest change applied is the record's own `modifiedon` when it carries one (always for tables
read by `modifiedon`; with change tracking only when the plan selects it), else the cycle's read
time; the status says which. A page ends by asking whether the ongoing sync is still on, so a cycle
running when an admin turns it off stops after the page it is writing.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime

from bot.models import MODIFIED_ON, Counts
from bot.store import ChangeTime, Store


def parse_modified_on(value: object) -> float | None:
    """Dataverse's `modifiedon` (ISO 8601, `Z`) as a Unix time; None when absent or unreadable."""
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


class CycleFigures:
    def __init__(self, store: Store, team_id: str, connection_id: str, entity: str,
                 clock: Callable[[], float] = time.time) -> None:
        self._records, self._team, self._connection, self._entity = store.ongoing, team_id, connection_id, entity
        self._clock = clock
        self.read_at = clock()
        self.stopped = False  # turned off during the cycle: it stopped after a page
        self._written = 0
        self._newest_modified: float | None = None
        self._changes = 0
        self._closed = False

    def page_read(self, records: list[dict], deleted: int = 0) -> None:
        """A page of changes read, about to be written."""
        changes = len(records) + deleted
        self._changes += changes
        for record in records:
            stamp = parse_modified_on(record.get(MODIFIED_ON))
            if stamp is not None and (self._newest_modified is None or stamp > self._newest_modified):
                self._newest_modified = stamp
        self._records.page_read(self._team, self._connection, self._entity, changes)

    def page_done(self, totals: Counts) -> bool:
        """The page is handled (`totals`: the cycle's counts so far); False when the cycle must stop here."""
        written = totals.created + totals.updated
        still_on = self._records.page_done(self._team, self._connection, self._entity, written - self._written,
                                           self._clock())
        self._written = written
        self.stopped = not still_on
        return still_on

    def finished(self) -> None:
        """Every change read is handled: unless it stopped early, Marketo holds every change made before `read_at`."""
        self._closed = True
        if self.stopped:
            return  # not a successful cycle; its last page left no backlog
        newest, source = self._newest_modified, ChangeTime.modified_on
        if newest is None and self._changes:
            newest, source = self.read_at, ChangeTime.read_time
        self._records.cycle_finished(self._team, self._connection, self._entity, at=self._clock(),
                                     read_at=self.read_at, newest_change_at=newest, newest_change_from=source)

    def close(self) -> None:
        """The cycle ended: when it did not finish (lost its lease, failed), nothing stays in flight."""
        if not self._closed:
            self._records.clear_backlog(self._team, self._connection, self._entity)
