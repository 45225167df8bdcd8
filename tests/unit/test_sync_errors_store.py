"""The ongoing sync's error list in real Redis: one entry per record, newest first, the retry queue."""

from __future__ import annotations

from bot.models import Direction
from bot.store import FailedRecord, Resolution, Store


def _fail(store: Store, entity: str, ids: list[str], now: float, reason: str = "Invalid email") -> None:
    store.sync_errors.book("T1", "c1", entity, [FailedRecord(i, f"{i}@x.com", "1003", reason) for i in ids], now)


def test_a_record_failing_again_updates_its_entry(store: Store) -> None:
    _fail(store, "lead", ["a", "b"], 100.0)
    _fail(store, "lead", ["a"], 200.0, reason="Field 'firstName' is not updateable")
    assert store.pending_failures("T1", "c1", "lead") == 2
    assert store.pending_failures("T1", "c1", "contact") == 0
    newest = store.sync_errors.recent("T1", "c1", ["lead"], None, 10)
    assert [(e.id, e.attempts, e.first_failed_at, e.last_failed_at) for e in newest] == [
        ("a", 2, 100.0, 200.0), ("b", 1, 100.0, 100.0)]
    assert newest[0].reason == "Field 'firstName' is not updateable" and newest[0].email == "a@x.com"


def test_reasons_are_bounded(store: Store) -> None:
    _fail(store, "lead", ["a"], 1.0, reason="x" * 100_000)
    assert len(store.sync_errors.recent("T1", "c1", ["lead"], None, 1)[0].reason) <= 500


def test_recent_merges_entities_and_filters_by_time(store: Store) -> None:
    _fail(store, "lead", ["l1"], 100.0)
    _fail(store, "contact", ["c1"], 300.0)
    _fail(store, "lead", ["l2"], 200.0)
    both = ["lead", "contact"]
    assert [e.id for e in store.sync_errors.recent("T1", "c1", both, None, 10)] == ["c1", "l2", "l1"]
    assert [e.id for e in store.sync_errors.recent("T1", "c1", both, 150.0, 10)] == ["c1", "l2"]
    assert [e.id for e in store.sync_errors.recent("T1", "c1", both, None, 2)] == ["c1", "l2"]
    assert store.sync_errors.count("T1", "c1", both, 150.0) == 2
    assert store.sync_errors.count("T1", "c1", ["lead"]) == 2


def test_iterating_streams_every_entry_in_chunks(store: Store) -> None:
    ids = [f"r{i:04d}" for i in range(1203)]
    store.sync_errors.book("T1", "c1", "lead", [FailedRecord(i, None, "1003", "bad") for i in ids], 5.0)
    assert sorted(e.id for e in store.sync_errors.iter_errors("T1", "c1", ["lead", "account"])) == ids
    store.sync_errors.book("T1", "c1", "lead", [FailedRecord(i, None, "1003", "bad") for i in ids], 6.0)
    assert {e.attempts for e in store.sync_errors.iter_errors("T1", "c1", ["lead"])} == {2}
    assert store.sync_errors.resolve("T1", "c1", "lead", ids, Resolution.retried_ok) == len(ids)
    assert store.pending_failures("T1", "c1", "lead") == 0


def test_retry_candidates_stop_at_the_bound_and_resolving_counts_why(store: Store) -> None:
    _fail(store, "lead", ["a", "b", "c"], 1.0)
    for now in (2.0, 3.0):
        _fail(store, "lead", ["a"], now)  # a: 3 attempts
    assert sorted(e.id for e in store.sync_errors.retry_candidates("T1", "c1", "lead", 3, 10)) == ["b", "c"]
    assert [e.id for e in store.sync_errors.retry_candidates("T1", "c1", "lead", 3, 1)] in (["b"], ["c"])
    assert store.sync_errors.permanent("T1", "c1", "lead", 3) == 1

    assert store.sync_errors.resolve("T1", "c1", "lead", ["b", "b", "unknown"], Resolution.retried_ok) == 1
    assert store.sync_errors.resolve("T1", "c1", "lead", ["c"], Resolution.deleted) == 1
    assert store.sync_errors.resolve("T1", "c1", "lead", [], Resolution.deleted) == 0
    assert store.pending_failures("T1", "c1", "lead") == 1
    assert store.sync_errors.retry_candidates("T1", "c1", "lead", 3, 10) == []
    assert [e.id for e in store.sync_errors.recent("T1", "c1", ["lead"], None, 10)] == ["a"]
    assert store.sync_errors.resolved_counts("T1", "c1") == {"lead:retried_ok": 1, "lead:deleted": 1}


def test_resolving_a_whole_list_takes_every_entry_of_both_directions_and_no_other_list(store: Store) -> None:
    ids = [f"p{i:04d}" for i in range(1203)]  # more than one chunk
    store.sync_errors.book("T1", "c1", "new_project", [FailedRecord(i, None, "no-person", "bad") for i in ids], 1.0)
    store.sync_errors.book("T1", "c1", "new_project",
                           [FailedRecord("back", None, "1003", "bad", Direction.to_dynamics)], 2.0)
    _fail(store, "lead", ["l1"], 3.0)
    assert store.sync_errors.resolve_all("T1", "c1", "new_project", Resolution.table_removed) == len(ids) + 1
    assert store.pending_failures("T1", "c1", "new_project") == 0
    assert store.sync_errors.count("T1", "c1", ["new_project"]) == 0
    assert store.pending_failures("T1", "c1", "lead") == 1
    assert store.sync_errors.resolved_counts("T1", "c1") == {
        "new_project:table_removed": len(ids), "new_project-to_dynamics:table_removed": 1}
    assert store.sync_errors.resolve_all("T1", "c1", "new_project", Resolution.table_removed) == 0
