"""The ongoing sync's figures on real Redis: the written-per-minute series (sums, trimming), backlog,
lag and newest change as a cycle records them, the switch, failures waiting for retry."""

from __future__ import annotations

import pytest
import redis

from bot.models import Counts
from bot.store import ChangeTime, FailedRecord, OngoingSwitch, Store
from bot.sync.figures import CycleFigures, parse_modified_on

TEAM, CONNECTION, LEAD = "T1", "c1", "lead"
NOW = 1_800_000_000.0  # a minute boundary (divisible by 60)
MINUTE = 60


class Clock:
    def __init__(self, at: float) -> None:
        self.at = at

    def __call__(self) -> float:
        return self.at


def written_at(store: Store, at: float, count: int) -> None:
    assert store.ongoing.page_done(TEAM, CONNECTION, LEAD, written=count, at=at)


def figures(store: Store, now: float = NOW):  # noqa: ANN201
    return store.ongoing_figures(TEAM, CONNECTION, [LEAD], now).entities[0]


def test_last_hour_and_last_day_are_sums_of_minutes(store: Store) -> None:
    written_at(store, NOW, 5)
    written_at(store, NOW + 30, 2)  # same minute
    written_at(store, NOW - 59 * MINUTE, 10)  # still in the last hour
    written_at(store, NOW - 60 * MINUTE, 100)  # an hour ago: the day only
    written_at(store, NOW - (24 * 60 - 1) * MINUTE, 1000)  # the day's oldest minute
    written_at(store, NOW - 24 * 60 * MINUTE, 10_000)  # a day ago: neither
    row = figures(store, NOW + 30)
    assert (row.written_last_hour, row.written_last_day) == (17, 1117)


def test_the_series_is_trimmed_past_a_day_and_expires(store: Store, redis_client: redis.Redis) -> None:
    for minutes_ago in range(0, 3 * 24 * 60, 7):  # three days of writes, every seven minutes
        written_at(store, NOW - minutes_ago * MINUTE, 1)
    series = store.keys.ongoing_written(TEAM, CONNECTION, LEAD)
    assert redis_client.hlen(series) > 24 * 60 // 7 * 2
    store.ongoing.trim(TEAM, CONNECTION, LEAD, NOW)
    kept = redis_client.hlen(series)
    assert kept == len(range(0, 24 * 60, 7))
    assert figures(store).written_last_day == kept  # trimming drops only what no sum counts
    assert 0 < redis_client.ttl(series) <= 25 * 3600


def test_a_cycle_records_backlog_lag_and_the_newest_modifiedon(store: Store) -> None:
    clock = Clock(NOW)
    cycle = CycleFigures(store, TEAM, CONNECTION, LEAD, clock=clock)
    cycle.page_read([{"modifiedon": "2027-01-15T08:00:00Z"}, {"modifiedon": "2027-01-15T08:05:00Z"}, {}], deleted=1)
    assert figures(store).backlog == 4
    clock.at = NOW + 90
    assert cycle.page_done(Counts(created=1, updated=2, failed=1))
    assert figures(store).backlog == 0
    cycle.finished()
    cycle.close()

    row = figures(store, NOW + 300)
    assert row.last_cycle_at == NOW + 90 and row.caught_up_at == NOW
    assert row.newest_change_at == parse_modified_on("2027-01-15T08:05:00Z")
    assert row.newest_change_from == ChangeTime.modified_on
    assert (row.written_last_hour, row.written_last_day, row.backlog) == (3, 3, 0)


def test_without_modifiedon_the_newest_change_is_the_read_time_and_an_idle_cycle_keeps_it(store: Store) -> None:
    clock = Clock(NOW)
    cycle = CycleFigures(store, TEAM, CONNECTION, LEAD, clock=clock)
    cycle.page_read([{"leadid": "a"}])
    cycle.page_done(Counts(updated=1))
    cycle.finished()
    row = figures(store)
    assert (row.newest_change_at, row.newest_change_from) == (NOW, ChangeTime.read_time)

    clock.at = NOW + 600
    idle = CycleFigures(store, TEAM, CONNECTION, LEAD, clock=clock)
    idle.finished()  # read nothing
    row = figures(store, NOW + 600)
    assert row.caught_up_at == NOW + 600  # caught up: no lag
    assert (row.newest_change_at, row.newest_change_from) == (NOW, ChangeTime.read_time)


def test_a_cycle_that_does_not_finish_leaves_no_backlog_and_no_last_cycle(store: Store) -> None:
    cycle = CycleFigures(store, TEAM, CONNECTION, LEAD, clock=Clock(NOW))
    cycle.page_read([{}, {}])
    assert figures(store).backlog == 2
    cycle.close()  # it failed (an exception) or lost its lease
    row = figures(store)
    assert (row.backlog, row.last_cycle_at, row.caught_up_at) == (0, None, None)


def test_turned_off_a_cycle_stops_after_the_page_and_is_not_a_successful_cycle(store: Store) -> None:
    cycle = CycleFigures(store, TEAM, CONNECTION, LEAD, clock=Clock(NOW))
    cycle.page_read([{}])
    assert store.ongoing.set_switch(TEAM, CONNECTION, OngoingSwitch(enabled=False, by="U1", at=NOW))
    assert not cycle.page_done(Counts(created=1))
    assert cycle.stopped
    cycle.finished()
    row = figures(store)
    assert (row.last_cycle_at, row.backlog, row.written_last_hour) == (None, 0, 1)


def test_the_switch_changes_once(store: Store) -> None:
    assert store.ongoing.enabled(TEAM, CONNECTION) and store.ongoing.switch(TEAM, CONNECTION) is None
    assert not store.ongoing.set_switch(TEAM, CONNECTION, OngoingSwitch(enabled=True, by="U1", at=NOW))  # already on
    off = OngoingSwitch(enabled=False, by="U1", at=NOW)
    assert store.ongoing.set_switch(TEAM, CONNECTION, off)
    assert not store.ongoing.set_switch(TEAM, CONNECTION, OngoingSwitch(enabled=False, by="U2", at=NOW + 1))
    assert store.ongoing.switch(TEAM, CONNECTION) == off
    state = store.ongoing_figures(TEAM, CONNECTION, [LEAD], NOW)
    assert not state.enabled and state.switch == off


def test_next_cycle_and_failures_waiting_for_retry(store: Store) -> None:
    store.incremental.schedule(TEAM, CONNECTION, NOW + 120)
    failed = [FailedRecord(id=f"id-{n}", email=None, code="1003", reason="refused") for n in range(3)]
    store.sync_errors.book(TEAM, CONNECTION, LEAD, failed, NOW)
    store.sync_errors.book(TEAM, CONNECTION, "contact", failed[:1], NOW)
    state = store.ongoing_figures(TEAM, CONNECTION, [LEAD, "contact"], NOW)
    assert state.next_cycle_at == NOW + 120
    assert [row.pending_failures for row in state.entities] == [3, 1]
    store.incremental.unschedule(TEAM, CONNECTION)


@pytest.mark.parametrize(("text", "expected"), [("2027-01-15T08:05:00Z", 1_800_000_300.0), (None, None),
                                                ("not a time", None)])
def test_parse_modified_on(text: str | None, expected: float | None) -> None:
    assert parse_modified_on(text) == expected
