"""`/connect-dynamics errors [entity] [since]`: the ongoing sync's failed records, newest first, and
the full list as a CSV file (written from Redis in chunks, uploaded after the ack)."""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime

from slack_sdk import WebClient

from bot.errors import BotError
from bot.models import Connection, Direction, Entity
from bot.safe_csv import SafeCsvWriter
from bot.store import Store
from bot.views.errors import errors_message, no_errors_message
from bot.views.kit import Message

SHOWN = 20
CSV_COLUMNS = ("entity", "id", "email", "code", "reason", "attempts", "state", "first_failed_utc", "last_failed_utc",
               "direction")
USAGE = ("Usage: `/connect-dynamics errors [lead|contact|account|opportunity] [since]`, where since is a duration "
         "such as `30m`, `2h`, `3d`, `1w` or a date such as `2026-01-31`.")
NO_CONNECTION = "No errors to show: nothing is connected yet, so no sync runs. Run /connect-dynamics to connect."
_DURATION = re.compile(r"(\d{1,6})([mhdw])")
_UNIT_SECONDS = {"m": 60, "h": 3600, "d": 86400, "w": 604800}
_ENTITY_WORDS = {**{e.value: e for e in Entity}, **{e.entity_set: e for e in Entity}}


class BadErrorsArguments(BotError):
    """The words after `errors` are neither a table nor a time."""


@dataclass(frozen=True)
class ErrorsQuery:
    entities: tuple[Entity, ...] = tuple(Entity)
    since: float | None = None

    @property
    def scope(self) -> str:
        """" for leads since …" (empty for everything)."""
        table = f" for {self.entities[0].entity_set}" if len(self.entities) == 1 else ""
        since = f" since {datetime.fromtimestamp(self.since, UTC):%Y-%m-%d %H:%M} UTC" if self.since else ""
        return table + since


def _since(word: str, now: float) -> float | None:
    if match := _DURATION.fullmatch(word):
        return now - int(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    try:
        moment = datetime.fromisoformat(word)
    except ValueError:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def parse_query(words: list[str], now: float) -> ErrorsQuery:
    """`[entity] [since]` in either order; anything else is refused with the usage."""
    if len(words) > 2:
        raise BadErrorsArguments(USAGE)
    entities: tuple[Entity, ...] = tuple(Entity)
    since: float | None = None
    for word in words:
        lowered = word.lower()
        if lowered in _ENTITY_WORDS:
            entities = (_ENTITY_WORDS[lowered],)
        elif (moment := _since(lowered, now)) is not None:
            since = moment
        else:
            raise BadErrorsArguments(f"I don't understand `{word[:40]}`. {USAGE}")
    return ErrorsQuery(entities, since)


@dataclass(frozen=True)
class ErrorsAnswer:
    message: Message
    connection_id: str | None = None
    total: int = 0


def _names(connection: Connection | None, query: ErrorsQuery) -> list[str]:
    """The error lists a query reads: its entities, and without a table named, the custom tables too."""
    names = [e.value for e in query.entities]
    if len(query.entities) == len(Entity) and connection is not None and connection.plan is not None:
        names += [c.table for c in connection.plan.custom_objects]
    return names


def list_errors(store: Store, max_attempts: int, team_id: str, query: ErrorsQuery) -> ErrorsAnswer:
    """The newest `SHOWN` failures of the team's connection for `query`, and how many there are."""
    connection = store.active_connection(team_id)
    if connection is None:
        return ErrorsAnswer(Message(text=NO_CONNECTION))
    names = _names(connection, query)
    total = store.sync_errors.count(team_id, connection.id, names, query.since)
    if not total:
        return ErrorsAnswer(no_errors_message(query.scope), connection.id)
    entries = store.sync_errors.recent(team_id, connection.id, names, query.since, SHOWN)
    message = errors_message(entries, total, query.scope, max_attempts, csv_follows=True)
    return ErrorsAnswer(message, connection.id, total)


def _utc(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def upload_errors(store: Store, client: WebClient, max_attempts: int, team_id: str, connection_id: str,
                  user_id: str, query: ErrorsQuery) -> int:
    """Write every failure of `query` to a CSV file (streamed from Redis) and upload it to the admin's DM
    with the bot, not to the channel the command came from (it lists people's emails); returns rows."""
    handle, path = tempfile.mkstemp(prefix="sync-errors-", suffix=".csv")
    try:
        with os.fdopen(handle, "w", newline="", encoding="utf-8") as out:
            writer = SafeCsvWriter(out)
            writer.writerow(CSV_COLUMNS)
            rows = 0
            for e in store.sync_errors.iter_errors(team_id, connection_id,
                                                   _names(store.get_connection(team_id, connection_id), query),
                                                   query.since):
                retried = e.direction == Direction.to_marketo and e.attempts < max_attempts
                writer.writerow((e.entity, e.id, e.email, e.code, e.reason, e.attempts,
                                 "retrying" if retried else "error", _utc(e.first_failed_at), _utc(e.last_failed_at),
                                 e.direction.value))
                rows += 1
        if rows:
            channel = client.conversations_open(users=user_id)["channel"]["id"]
            client.files_upload_v2(channel=channel, file=path, filename="sync-errors.csv",
                                   title=f"Sync errors ({rows})",
                                   initial_comment=f"{rows} records the ongoing sync could not write; each row says why.")
    finally:
        os.unlink(path)
    return rows
