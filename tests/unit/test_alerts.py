"""The alert rules (plain functions) and their state machine in real Redis: one post per change."""

from __future__ import annotations

from datetime import datetime

import pytest

from bot import alerts
from bot.alerts import Cause, Condition, Observation
from bot.crypto import SecretUnreadable
from bot.dynamics.errors import DataverseAccessDenied, SignInUnreachable, WrongPassword
from bot.marketo.errors import DailyQuotaExceeded
from bot.marketo.limiter import QUOTA_ZONE
from bot.models import Connection, FlowState
from bot.store import Level, Store


class Poster:
    """Records what would be posted to NOTIFY_CHANNEL."""

    def __init__(self) -> None:
        self.alerts: list[Cause] = []
        self.recoveries: list[tuple[Cause, float]] = []

    def alert(self, cause: Cause) -> str:
        self.alerts.append(cause)
        return f"1700000000.{len(self.alerts):06d}"

    def recovered(self, cause: Cause, since: float) -> None:
        self.recoveries.append((cause, since))


@pytest.mark.parametrize(("exc", "condition"), [
    (WrongPassword("invalid_grant", 50126), Condition.credentials),
    (SecretUnreadable(), Condition.credentials),
    (DataverseAccessDenied(403, "0x80040220", "missing prvReadLead privilege"), Condition.access),
    (DailyQuotaExceeded("607", "Daily quota reached"), Condition.quota),
])
def test_a_cycle_error_names_its_condition(exc: Exception, condition: Condition) -> None:
    seen = alerts.failure_observation(exc, 1_700_000_000)
    assert seen is not None and seen.alerting and seen.cause.condition == condition


def test_other_errors_are_no_alert_condition() -> None:
    assert alerts.failure_observation(SignInUnreachable("unreachable"), 0) is None
    assert alerts.failure_observation(RuntimeError("boom"), 0) is None


def test_access_lost_names_the_missing_privilege() -> None:
    seen = alerts.failure_observation(DataverseAccessDenied(403, "", "SecLib::Check failed: missing prvReadContact"), 0)
    assert seen is not None and seen.cause.privilege == "prvReadContact"


def test_the_quota_resets_at_the_next_midnight_in_chicago() -> None:
    now = datetime(2026, 3, 10, 15, 30, tzinfo=QUOTA_ZONE).timestamp()
    assert alerts.next_quota_day(now) == datetime(2026, 3, 11, tzinfo=QUOTA_ZONE).timestamp()


def test_failure_rate_above_the_threshold_alerts_per_entity() -> None:
    over = alerts.cycle_observations("lead", read=100, failed=6, wrote_to_marketo=True, threshold=0.05)
    under = alerts.cycle_observations("lead", read=100, failed=5, wrote_to_marketo=True, threshold=0.05)
    rate = [o for o in over if o.cause.condition == Condition.failure_rate]
    assert [(o.key, o.alerting) for o in rate] == [("failure_rate:lead", True)]
    assert not any(o.alerting for o in under)
    assert not [o for o in alerts.cycle_observations("lead", 0, 0, False, 0.05)
                if o.cause.condition in (Condition.failure_rate, Condition.quota)]


def test_overdue_after_three_intervals() -> None:
    assert alerts.overdue_observation(None, 1000.0, 5) is None
    assert not alerts.overdue_observation(1000.0, 1000.0 + 15 * 60, 5).alerting
    assert alerts.overdue_observation(1000.0, 1000.0 + 15 * 60 + 1, 5).alerting


def test_three_failing_cycles_post_one_alert_then_one_recovery(store: Store) -> None:
    poster = Poster()
    failing = alerts.failure_observation(WrongPassword("invalid_grant", 50126), 0)
    assert failing is not None
    for now in (100.0, 200.0, 300.0):
        alerts.apply(store, poster, "T1", "c1", [failing], now)
    assert [c.condition for c in poster.alerts] == [Condition.credentials]
    state = store.alert_states.get("T1", "c1", Condition.credentials.value)
    assert (state.level, state.since, state.message_ts) == (Level.alerting, 100.0, "1700000000.000001")

    done = alerts.cycle_observations("lead", read=10, failed=0, wrote_to_marketo=True, threshold=0.05)
    for now in (400.0, 500.0):
        alerts.apply(store, poster, "T1", "c1", done, now)
    assert [(c.condition, since) for c, since in poster.recoveries] == [(Condition.credentials, 100.0)]
    assert len(poster.alerts) == 1
    assert store.alert_states.get("T1", "c1", Condition.credentials.value).level == Level.ok


def test_conditions_and_connections_are_independent(store: Store) -> None:
    poster = Poster()
    rate = Observation(Cause(Condition.failure_rate, entity="lead", failed=9, read=10), True)
    contact_ok = Observation(Cause(Condition.failure_rate, entity="contact", failed=0, read=10), False)
    alerts.apply(store, poster, "T1", "c1", [rate, contact_ok], 1.0)
    alerts.apply(store, poster, "T1", "c2", [rate], 1.0)
    alerts.apply(store, poster, "T1", "c1", [contact_ok, rate], 2.0)
    assert len(poster.alerts) == 2 and poster.recoveries == []


def test_overdue_is_checked_for_scheduled_connections_unless_explained(store: Store) -> None:
    poster = Poster()
    synced = [Connection(team_id="T1", requester="U1", state=FlowState.synced) for _ in range(2)]
    draft = Connection(team_id="T1", requester="U1", state=FlowState.cancelled)
    for connection in (*synced, draft):
        store.save_connection(connection)
        store.incremental.schedule("T1", connection.id, 0)
        store.incremental.record("T1", connection.id, "lead", {"read": 1})
    last = float(store.incremental.stats("T1", synced[0].id)["last_at"])
    credentials = alerts.failure_observation(WrongPassword("invalid_grant", 50126), 0)
    assert credentials is not None
    alerts.apply(store, poster, "T1", synced[1].id, [credentials], last)
    alerts.check_overdue(store, poster, minutes=1, now=last + 10)
    assert len(poster.alerts) == 1
    alerts.check_overdue(store, poster, minutes=1, now=last + 181)
    alerts.check_overdue(store, poster, minutes=1, now=last + 240)
    overdue = [c for c in poster.alerts if c.condition == Condition.overdue]
    assert len(overdue) == 1  # the first only: the second's delay is explained, the third is not synced
    assert store.alert_states.get("T1", synced[0].id, Condition.overdue.value).level == Level.alerting
    assert store.alert_states.get("T1", draft.id, Condition.overdue.value).level == Level.ok
