"""The Redis side of people's company links (`bot.store.links`), against real Redis."""

from __future__ import annotations

from bot.store import Store


def test_a_person_waits_for_the_account_it_points_to_now(store: Store) -> None:
    links = store.links
    links.wait_for_companies("T1", "c1", {"A": ["contact:1", "contact:2"]}, [])
    assert links.company_waiters("T1", "c1", ["A", "B"]) == {"A": ["contact:1", "contact:2"]}

    links.wait_for_companies("T1", "c1", {"B": ["contact:1"]}, ["contact:2"])  # 1 moved to B; 2 got linked
    assert links.company_waiters("T1", "c1", ["A"]) == {}
    assert links.company_waiters("T1", "c1", ["A", "B"]) == {"B": ["contact:1"]}
    assert not store.redis.exists(store.keys.company_waiters("T1", "c1", "A"))  # the stale entries went

    links.linked("T1", "c1", {"B": ["contact:1"]})
    assert links.company_waiters("T1", "c1", ["B"]) == {}
    assert not store.redis.exists(store.keys.company_awaited("T1", "c1"))


def test_written_companies_and_known_sales_persons(store: Store) -> None:
    links = store.links
    links.mark_companies_written("T1", "c1", ["A", "B"])
    assert links.companies_written("T1", "c1", ["A", "C", "A"]) == {"A"}
    assert links.companies_written("T1", "c2", ["A"]) == set()  # per connection
    links.remember_sales_persons("T1", "c1", ["u1"])
    assert links.sales_persons_known("T1", "c1", ["u1", "u2"]) == {"u1"}
    assert 0 < store.redis.ttl(store.keys.sales_persons("T1", "c1")) <= 24 * 3600  # names refresh daily
