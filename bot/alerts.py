"""Alerts about the ongoing sync: which conditions hold, and posting only when one changes.

Conditions per connection: the Dynamics credentials are rejected, access to Dynamics is lost, the
last good cycle is more than `OVERDUE_INTERVALS` intervals old, too many records of a cycle failed
(`ALERT_FAILURE_RATE`, per entity), the daily Marketo quota is used up. Each cycle (and the workers'
maintenance tick) reports what it saw as `Observation`s; `apply` moves each condition's stored state
and posts an alert on ok→alerting and a recovery notice on alerting→ok, never once per cycle.
The rules are plain functions; the posting goes through a `Poster` (the `Notifier`).
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Protocol

from bot.bounded_text import cut
from bot.crypto import SecretUnreadable
from bot.dynamics.errors import DataverseAccessDenied, DataverseUnauthorized, SignInError, SignInUnreachable
from bot.marketo.errors import DailyQuotaExceeded
from bot.marketo.limiter import QUOTA_ZONE
from bot.models import Connection, FlowState
from bot.store import Level, Store

log = logging.getLogger(__name__)

OVERDUE_INTERVALS = 3
_PRIVILEGE = re.compile(r"\bprv[A-Za-z]+\b")


class Condition(StrEnum):
    credentials = "credentials_rejected"
    access = "access_lost"
    overdue = "cycle_overdue"
    failure_rate = "failure_rate"
    quota = "quota_exhausted"


# While one of these alerts stands, cycles failing is its consequence, not news: no overdue alert.
EXPLAINED_DELAY = (Condition.credentials, Condition.access, Condition.quota)


@dataclass(frozen=True)
class Cause:
    """What a message about one condition says: the condition and what is known about it."""

    condition: Condition
    entity: str | None = None  # failure rate: the table
    problem: str = ""  # the error's own words (Dynamics' sign-in error, the missing privilege)
    privilege: str | None = None  # access lost: the privilege Dynamics named, if any
    failed: int = 0  # failure rate: records failed / read in the cycle
    read: int = 0
    resets_at: float | None = None  # quota: when Marketo's day starts again
    last_ok_at: float | None = None  # overdue: the last good cycle
    minutes: float = 0  # overdue: the cycle interval


@dataclass(frozen=True)
class Observation:
    """One condition seen holding (`alerting`) or not, by a cycle or the maintenance tick."""

    cause: Cause
    alerting: bool

    @property
    def key(self) -> str:
        """The stored condition: the failure rate is kept per table."""
        condition = self.cause.condition
        return f"{condition.value}:{self.cause.entity}" if self.cause.entity else condition.value


class Poster(Protocol):
    def alert(self, cause: Cause) -> str | None: ...

    def recovered(self, cause: Cause, since: float) -> None: ...


# -- the rules --------------------------------------------------------------------------------------
def next_quota_day(now: float) -> float:
    """When Marketo's daily quota resets after `now`: midnight US Central time."""
    local = datetime.fromtimestamp(now, QUOTA_ZONE)
    midnight = datetime.combine(local.date() + timedelta(days=1), datetime.min.time(), QUOTA_ZONE)
    return midnight.timestamp()


def failure_observation(exc: BaseException, now: float) -> Observation | None:
    """The condition a cycle's error means, or None when it is none of the watched ones."""
    if isinstance(exc, SecretUnreadable):
        return Observation(Cause(Condition.credentials, problem=exc.user_message), True)
    if isinstance(exc, SignInError) and not isinstance(exc, SignInUnreachable):
        return Observation(Cause(Condition.credentials, problem=exc.problem), True)
    if isinstance(exc, DataverseAccessDenied | DataverseUnauthorized):
        found = _PRIVILEGE.search(exc.message or "")
        return Observation(Cause(Condition.access, problem=cut(exc.problem),
                                 privilege=found.group(0) if found else None), True)
    if isinstance(exc, DailyQuotaExceeded):
        return Observation(Cause(Condition.quota, resets_at=next_quota_day(now)), True)
    return None


def cycle_observations(entity: str, read: int, failed: int, wrote_to_marketo: bool,
                       threshold: float) -> list[Observation]:
    """What a finished cycle of `entity` shows: it signed in and read Dynamics, so credentials and
    access work; the quota works when it wrote to Marketo; the failure rate when it read records."""
    seen = [Observation(Cause(Condition.credentials), False), Observation(Cause(Condition.access), False),
            Observation(Cause(Condition.overdue), False)]
    if wrote_to_marketo:
        seen.append(Observation(Cause(Condition.quota), False))
    if read:
        cause = Cause(Condition.failure_rate, entity=entity, failed=failed, read=read)
        seen.append(Observation(cause, failed / read > threshold))
    return seen


def overdue_observation(last_ok_at: float | None, now: float, minutes: float) -> Observation | None:
    """Overdue when the last good cycle is more than `OVERDUE_INTERVALS` intervals old."""
    if last_ok_at is None:
        return None
    cause = Cause(Condition.overdue, last_ok_at=last_ok_at, minutes=minutes)
    return Observation(cause, now - last_ok_at > OVERDUE_INTERVALS * minutes * 60)


# -- state and delivery -------------------------------------------------------------------------------
def apply(store: Store, poster: Poster | None, team_id: str, connection_id: str,
          observations: list[Observation], now: float | None = None) -> list[Observation]:
    """Move each observed condition to what was seen; post for those that changed (returned)."""
    now = time.time() if now is None else now
    changed = []
    for seen in observations:
        level = Level.alerting if seen.alerting else Level.ok
        left = store.alert_states.change(team_id, connection_id, seen.key, level, now)
        if left is None:
            continue
        changed.append(seen)
        if poster is None:
            continue
        try:
            if seen.alerting:
                ts = poster.alert(seen.cause)
                if ts:
                    store.alert_states.note_message(team_id, connection_id, seen.key, ts)
            else:
                poster.recovered(seen.cause, left.since)
        except Exception:
            log.exception("could not post the %s notice for connection %s", seen.key, connection_id)
    return changed


def check_overdue(store: Store, poster: Poster | None, minutes: float, now: float | None = None) -> None:
    """For every scheduled, synced connection: is its last good cycle overdue? (The maintenance tick's check.)"""
    now = time.time() if now is None else now
    for team_id, connection_id in store.incremental.due(float("inf")):
        connection = store.get_connection(team_id, connection_id)
        if connection is None or connection.state != FlowState.synced:
            continue
        states = store.alert_states.all(team_id, connection_id)
        if any(states.get(c.value) and states[c.value].level == Level.alerting for c in EXPLAINED_DELAY):
            continue  # already told why cycles do not finish
        seen = overdue_observation(last_good_cycle(store, connection), now, minutes)
        if seen is not None:
            apply(store, poster, team_id, connection_id, [seen], now)


def last_good_cycle(store: Store, connection: Connection) -> float | None:
    """When the connection last synced: its last finished incremental cycle, else its initial run."""
    last = store.incremental.stats(connection.team_id, connection.id).get("last_at")
    if last:
        return float(last)
    run = store.get_run(connection.team_id, connection.run_id) if connection.run_id else None
    return run.finished_at if run and run.finished_at else None
