"""Who is who, as the sync saw it, in real Redis (`bot.store.people`)."""

from __future__ import annotations

from bot.store import Store


def test_qualified_leads_are_found_by_lead_id(store: Store) -> None:
    store.people.link_qualified("T1", "c1", {"lead-1": "contact-1"})
    assert store.people.qualified("T1", "c1", ["lead-1", "lead-2"]) == {"lead-1": "contact-1"}
    assert store.people.qualified("T1", "c2", ["lead-1"]) == {}  # per connection
    assert store.people.qualified("T1", "c1", []) == {}


def test_a_person_who_moved_on_is_not_at_the_old_account(store: Store) -> None:
    store.people.place("T1", "c1", {"contact:1": "acc-a", "contact:2": "acc-a", "lead:3": "acc-b"})
    store.people.place("T1", "c1", {"contact:2": "acc-b"})
    assert store.people.people_at("T1", "c1", "acc-a") == ["contact:1"]
    assert store.people.people_at("T1", "c1", "acc-b") == ["contact:2", "lead:3"]
    store.people.forget_accounts("T1", "c1", ["acc-a"])
    assert store.people.people_at("T1", "c1", "acc-a") == []
    assert store.people.people_at("T1", "c1", "acc-none") == []
