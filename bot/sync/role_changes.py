"""Contact roles changed alone reach Marketo on the next incremental cycle of opportunities.

A role is a Dataverse `connection` from an opportunity (`bot.sync.opportunities`); creating, changing or
deleting one does not change its opportunity, so the opportunities' own change tracking does not see it.
Each cycle of opportunities therefore also follows the `connections` table: by change tracking, with its
own delta link, when the table has it (`ChangeTrackingEnabled`), else by a `modifiedon` watermark, which
does not see deletes. The opportunities of the roles that changed are then written again with all their
roles, which also deletes in Marketo the roles Dynamics no longer has.

A deleted connection comes back as its id only, so the opportunity of every role seen is kept in Redis.
The first cycle has no delta link yet: it reads the table once (tracked) to get one and counts as changed
the roles modified since the initial sync started; an expired link is replaced the same way, every role
then counting as changed. Like the opportunities' link, the new position is kept only once the cycle wrote.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from bot.dynamics.errors import ChangeTokenExpired
from bot.models import MODIFIED_ON, Connection
from bot.store import Store, Watermark
from bot.sync.opportunities import CONNECTIONS, FROM, LOOKUP_TABLE
from bot.sync.watermarks import fresh_pages

log = logging.getLogger(__name__)

TABLE = "connection"  # its metadata name; also the key of its delta link or watermark, beside the entities'
PRIMARY_ID = "connectionid"
SELECT = [PRIMARY_ID, FROM, MODIFIED_ON]


@dataclass
class RoleChanges:
    """The opportunities whose roles changed, and how to keep the new position once they are written."""

    opportunities: list[str]
    keep: Callable[[], None]


@dataclass
class _Seen:
    roles: dict[str, str]  # connection id -> its opportunity, for the roles of opportunities read now
    gone: list[str]  # connections deleted, or no longer from an opportunity
    changed: set[str]  # the opportunities concerned


def _from_opportunity(row: dict[str, Any]) -> bool:
    return bool(row.get(FROM)) and row.get(FROM + LOOKUP_TABLE) == "opportunity"


def _seen(store: Store, connection: Connection, rows: Iterable[dict[str, Any]], deleted: list[str]) -> _Seen:
    """What the changed `rows` and `deleted` ids mean, the opportunities they were roles of before included
    (a role moved to another opportunity, or deleted, leaves a stale role on its old one)."""
    roles: dict[str, str] = {}
    gone = list(deleted)
    for row in rows:
        if _from_opportunity(row):
            roles[str(row[PRIMARY_ID])] = str(row[FROM])
        else:
            gone.append(str(row[PRIMARY_ID]))
    before = store.links.role_opportunities(connection.team_id, connection.id, [*roles, *gone])
    return _Seen(roles, gone, set(roles.values()) | set(before.values()))


def read_changes(store: Store, connection: Connection, source: Any, start: Watermark | None) -> RoleChanges:
    """The opportunities whose roles changed since the last cycle; `start` is where a first cycle starts
    (the initial sync's start; None: it did not run, nothing to follow yet)."""
    team_id = connection.team_id
    link = store.delta_links.get(team_id, connection.id, TABLE)
    mark = store.watermarks.get(team_id, connection.id, TABLE)
    if link is not None:
        try:
            return _delta(store, connection, source, link)
        except ChangeTokenExpired:
            log.warning("change token of connections expired for %s; re-reading them in full", connection.id)
            return _baseline(store, connection, source, None)
    if mark is None:
        if start is None:
            return RoleChanges([], lambda: None)
        if source.change_tracking_enabled(TABLE):
            return _baseline(store, connection, source, start.modified_on)
        mark = start
    return _modified_since(store, connection, source, mark)


def _keep(store: Store, connection: Connection, seen: _Seen, position: Callable[[], None]) -> Callable[[], None]:
    def keep() -> None:
        store.links.remember_roles(connection.team_id, connection.id, seen.roles, seen.gone)
        position()

    return keep


def _delta(store: Store, connection: Connection, source: Any, link: str) -> RoleChanges:
    rows: list[dict[str, Any]] = []
    deleted: list[str] = []
    new_link: str | None = None
    for page in source.iter_changes(link, SELECT):
        rows.extend(page.records)
        deleted.extend(page.deleted_ids)
        new_link = page.delta_link or new_link
    return _tracked(store, connection, _seen(store, connection, rows, deleted), new_link)


def _baseline(store: Store, connection: Connection, source: Any, since: str | None) -> RoleChanges:
    """One tracked read of the whole table for a delta link; the roles modified since `since` (all: None)
    count as changed."""
    roles: dict[str, str] = {}
    changed: set[str] = set()
    new_link: str | None = None
    for page in source.iter_rows(CONNECTIONS, SELECT, track_changes=True):
        for row in page.records:
            if _from_opportunity(row):
                roles[str(row[PRIMARY_ID])] = str(row[FROM])
                if since is None or str(row.get(MODIFIED_ON) or "") >= since:
                    changed.add(str(row[FROM]))
        new_link = page.delta_link or new_link
    return _tracked(store, connection, _Seen(roles, [], changed), new_link)


def _tracked(store: Store, connection: Connection, seen: _Seen, new_link: str | None) -> RoleChanges:
    """What a tracked read saw, its delta link kept with the roles (none came: the old position stays)."""
    links = store.delta_links
    return RoleChanges(sorted(seen.changed), _keep(store, connection, seen, lambda: links.put(
        connection.team_id, connection.id, TABLE, new_link) if new_link else None))


def _modified_since(store: Store, connection: Connection, source: Any, start: Watermark) -> RoleChanges:
    """Without change tracking: the roles modified since the watermark (deletes are not seen this way)."""
    rows: list[dict[str, Any]] = []
    mark = start
    pages = source.iter_rows_modified_since(CONNECTIONS, PRIMARY_ID, SELECT, start.modified_on)
    for fresh, page_mark in fresh_pages(pages, start, PRIMARY_ID):
        rows.extend(fresh)
        mark = page_mark
    seen = _seen(store, connection, rows, [])
    marks = store.watermarks
    return RoleChanges(sorted(seen.changed), _keep(store, connection, seen, lambda: marks.put(
        connection.team_id, connection.id, TABLE, mark)))
