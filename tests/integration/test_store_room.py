"""The store's primitives on real Redis: the lease, the optimistic transaction, the rate slot."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from bot.models import Approval
from bot.store import Keys, Store


def _wait_until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def test_a_lease_is_exclusive_and_released_only_by_its_holder(store: Store) -> None:
    first = store.sync_lease("T1", "c1", "lead", ttl=5, owner="job-1")
    second = store.sync_lease("T1", "c1", "lead", ttl=5, owner="job-2")
    assert first.take()
    assert not second.take()
    assert store.sync_leased("T1", "c1", "lead")
    second.release()  # not its lease: nothing happens
    assert store.sync_leased("T1", "c1", "lead")
    first.release()
    assert not store.sync_leased("T1", "c1", "lead")
    assert second.take()


def test_renew_extends_a_held_lease_from_another_thread(store: Store) -> None:
    lease = store.sync_lease("T1", "c1", "lead", ttl=0.3)
    assert lease.take()
    renewed: list[bool] = []
    heartbeat = threading.Thread(target=lambda: renewed.extend(lease.renew() for _ in range(4)))
    heartbeat.start()
    heartbeat.join()
    assert renewed == [True] * 4
    assert store.redis.pttl(store.keys.sync_lock("T1", "c1", "lead")) > 200


def test_renew_takes_back_a_lapsed_lease_unless_someone_else_took_it(store: Store) -> None:
    stalled = store.sync_lease("T1", "c1", "lead", ttl=0.1)
    assert stalled.take()
    _wait_until(lambda: not store.sync_leased("T1", "c1", "lead"))
    assert stalled.renew()  # lapsed and free: taken back
    _wait_until(lambda: not store.sync_leased("T1", "c1", "lead"))
    other = store.sync_lease("T1", "c1", "lead", ttl=5)
    assert other.take()
    assert not stalled.renew()  # someone else holds it now
    stalled.release()
    assert store.sync_leased("T1", "c1", "lead")


def test_held_is_read_inside_a_transaction(store: Store) -> None:
    lease = store.sync_lease("T1", "c1", "lead", ttl=5)
    assert lease.take()
    with store.redis.pipeline() as pipe:
        pipe.watch(lease.key)
        assert lease.held_in(pipe)
        pipe.unwatch()
    lease.release()
    with store.redis.pipeline() as pipe:
        pipe.watch(lease.key)
        assert not lease.held_in(pipe)
        pipe.unwatch()


def test_concurrent_updates_are_never_lost(store: Store) -> None:
    approval = Approval(team_id="T1", connection_id="c1", requester="U1", required=1, created_at=0, expires_at=1)
    store.save_approval(approval)

    def add_one(current: Approval) -> Approval:
        current.approvers.append("x")
        return current

    def worker() -> None:
        for _ in range(20):
            store.update_approval("T1", approval.id, add_one)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stored = store.get_approval("T1", approval.id)
    assert stored is not None and len(stored.approvers) == 80


def test_the_progress_slot_is_taken_once_per_interval(store: Store) -> None:
    assert store.take_progress_slot("T1", "r1", 5000) == 0
    wait = store.take_progress_slot("T1", "r1", 5000)
    assert 0 < wait <= 5000


def test_every_key_is_under_the_prefix_and_team_keys_need_a_team() -> None:
    keys = Keys("p")
    assert keys.run("T1", "r1") == "p:T1:run:r1"
    assert keys.marketo_token("abc") == "p:global:marketo:token:abc"
    with pytest.raises(ValueError):
        keys.connection("", "c1")
