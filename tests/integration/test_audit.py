"""The audit log over the real Redis stream."""

from __future__ import annotations

import pytest

from bot import audit
from bot.audit import AuditLog
from bot.store import Store

TEAM = "T1"


def test_entries_come_back_in_order_with_actors(store: Store) -> None:
    log = AuditLog(store)
    log.record(TEAM, "UADMIN", audit.CONNECTION_STARTED, "c1", "new connection")
    log.record(TEAM, "UADMIN", audit.PLAN_SAVED, "c1", "3 Marketo fields to create")
    log.record(TEAM, "ULEAD", audit.APPROVED, "c1")
    entries = log.recent(TEAM)
    assert [(e.actor, e.action, e.connection_id) for e in entries] == [
        ("UADMIN", audit.CONNECTION_STARTED, "c1"),
        ("UADMIN", audit.PLAN_SAVED, "c1"),
        ("ULEAD", audit.APPROVED, "c1"),
    ]
    assert entries[1].detail == "3 Marketo fields to create"


def test_recent_returns_the_last_n_oldest_first(store: Store) -> None:
    log = AuditLog(store)
    for action in (audit.SYNC_STARTED, audit.SYNC_PAUSED, audit.SYNC_RESUMED, audit.SYNC_FINISHED):
        log.record(TEAM, "system", action)
    assert [e.action for e in log.recent(TEAM, n=2)] == [audit.SYNC_RESUMED, audit.SYNC_FINISHED]


def test_unknown_action_is_refused_and_nothing_written(store: Store) -> None:
    log = AuditLog(store)
    with pytest.raises(ValueError):
        log.record(TEAM, "U1", "password_changed")
    assert log.recent(TEAM) == []


def test_teams_are_isolated_and_clock_is_injectable(store: Store) -> None:
    log = AuditLog(store, clock=lambda: 1234.5)
    log.record("TA", "U1", audit.CONNECTION_STARTED)
    log.record("TB", "U2", audit.SCHEMA_APPLIED)
    [entry] = log.recent("TA")
    assert (entry.actor, entry.action, entry.at) == ("U1", audit.CONNECTION_STARTED, 1234.5)
    assert [e.actor for e in log.recent("TB")] == ["U2"]


def test_vocabulary_covers_the_design() -> None:
    expected = {
        "connection_started", "credentials_verified", "plan_saved", "approval_requested", "approved",
        "approval_recorded", "rejected", "expired", "schema_applied", "sync_started", "sync_finished",
        "sync_paused", "sync_resumed", "sync_cancelled",
    }
    assert expected <= audit.ACTIONS
