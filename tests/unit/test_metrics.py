"""The metrics' rules: Marketo outcome labels, and the Redis figures read at scrape time."""

from __future__ import annotations

import time

import redis
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from bot.metrics import SyncGauges, marketo_outcome
from bot.store import Store


def test_marketo_outcomes_are_codes_statuses_or_a_few_words() -> None:
    assert [marketo_outcome(c) for c in ("606", "615", "607", "1003", "502", "connect", "invalid-response", None)] == \
        ["606", "615", "607", "1003", "502", "connection", "other", "other"]


class _Queue:
    count = 4


class _Limiter:
    def calls_today(self) -> int:
        return 120


def _samples(gauges: SyncGauges) -> dict[tuple[str, tuple], float]:
    registry = CollectorRegistry()
    registry.register(gauges)
    text = generate_latest(registry).decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_gauges_read_queue_quota_and_the_oldest_lag_per_entity_from_redis(store: Store) -> None:
    schedule = store.incremental
    for connection in ("C1", "C2"):
        schedule.schedule("T1", connection, time.time() + 300)
    schedule.record("T1", "C1", "lead", {"read": 1})
    schedule.record("T1", "C2", "lead", {"read": 1})
    schedule.record("T1", "C2", "contact", {"read": 1})
    cycles = schedule.last_cycles()
    assert set(cycles) == {"lead", "contact"}
    now = max(cycles.values()) + 30

    samples = _samples(SyncGauges(_Queue(), _Limiter(), 1000, schedule, clock=lambda: now))
    assert samples[("sync_queue_depth", ())] == 4
    assert samples[("marketo_quota_left", ())] == 880
    assert samples[("sync_lag_seconds", (("entity", "lead"),))] == now - cycles["lead"]
    assert samples[("sync_lag_seconds", (("entity", "contact"),))] == 30


def test_a_scrape_while_redis_is_unreachable_leaves_those_figures_out() -> None:
    class Down:
        @property
        def count(self) -> int:
            raise redis.ConnectionError("down")

        def calls_today(self) -> int:
            raise redis.ConnectionError("down")

        def last_cycles(self) -> dict[str, float]:
            raise redis.ConnectionError("down")

    down = Down()
    assert _samples(SyncGauges(down, down, 1000, down)) == {}
