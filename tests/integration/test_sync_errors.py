"""The ongoing sync's error list and alerts over loopback: Marketo refuses records, the next cycles
retry them by id from Dynamics, a bounded number of times; alerts post once per change."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bot.alerts import Condition
from bot.models import Entity
from bot.store import Level
from bot.sync import incremental
from tests.integration.sync_harness import CHANNEL, SyncHarness, synced_world

RETRIES = 3


@pytest.fixture
def world(key_prefix: str) -> Iterator[SyncHarness]:
    yield from synced_world(key_prefix, {"lead": 60}, settings={"SYNC_RETRY_ATTEMPTS": RETRIES})


def _cycle(world: SyncHarness) -> str:
    return incremental.run_incremental(world.container.sync, "T1", world.connection.id, Entity.lead)


def _errors(world: SyncHarness) -> dict[str, int]:
    entries = world.store.sync_errors.recent("T1", world.connection.id, ["lead"], None, 100)
    return {e.id: e.attempts for e in entries}


def _posts(world: SyncHarness, words: str) -> list[str]:
    return [m.text for m in world.slack.messages(CHANNEL) if words in m.text]


def test_refused_records_are_listed_retried_and_cleared(world: SyncHarness) -> None:
    changed = [world.dynamics.record_id("lead", i) for i in (1, 2, 3)]
    for i in (1, 2, 3):
        world.dynamics.update_record("lead", i, firstname=f"Renamed {i}")
    world.marketo.lock_field("firstName")

    assert _cycle(world) == "done"
    assert _errors(world) == dict.fromkeys(changed, 1)
    entry = world.store.sync_errors.recent("T1", world.connection.id, ["lead"], None, 1)[0]
    assert "not updateable" in entry.reason and entry.code == "1003"
    assert len(_posts(world, "Many records failing")) == 1  # 3 of 3 records failed

    assert _cycle(world) == "done"  # no change in Dynamics: the retry re-reads them by id
    assert _errors(world) == dict.fromkeys(changed, 2)

    world.marketo.lock_field("firstName", locked=False)
    assert _cycle(world) == "done"
    assert _errors(world) == {}
    assert world.store.pending_failures("T1", world.connection.id, "lead") == 0
    for i, record_id in zip((1, 2, 3), changed, strict=True):
        assert world.marketo.lead_by("dynamicsLeadId", record_id)["firstName"] == f"Renamed {i}"
    assert world.store.sync_errors.resolved_counts("T1", world.connection.id) == {"lead:retried_ok": 3}
    assert len(_posts(world, "Many records failing")) == 1
    assert len(_posts(world, "without many failures again")) == 1


def test_retries_stop_at_the_bound_and_a_deleted_record_is_resolved(world: SyncHarness) -> None:
    kept, deleted = world.dynamics.record_id("lead", 1), world.dynamics.record_id("lead", 2)
    for i in (1, 2):
        world.dynamics.update_record("lead", i, firstname="Blocked")
    world.marketo.lock_field("firstName")
    for _ in range(RETRIES + 2):
        assert _cycle(world) == "done"
    assert _errors(world) == {kept: RETRIES, deleted: RETRIES}  # kept as errors, no longer retried
    calls = len(world.marketo.calls("/rest/v1/leads.json"))
    assert _cycle(world) == "done"
    assert len(world.marketo.calls("/rest/v1/leads.json")) == calls

    world.dynamics.delete_record("lead", 2)  # a permanent error whose record is deleted leaves the list
    assert _cycle(world) == "done"
    assert _errors(world) == {kept: RETRIES}
    assert world.store.sync_errors.resolved_counts("T1", world.connection.id) == {"lead:deleted": 1}


@pytest.mark.parametrize(("leaves", "resolution"), [("deleted", "lead:deleted"), ("filtered out", "lead:excluded")])
def test_a_retried_record_that_leaves_the_sync_leaves_the_list(world: SyncHarness, leaves: str,
                                                               resolution: str) -> None:
    """Deleted in Dynamics, or left out by the sync filter now: off the list, counted as such."""
    record_id = world.dynamics.record_id("lead", 5)
    world.dynamics.update_record("lead", 5, firstname="Blocked")
    world.marketo.lock_field("firstName")
    assert _cycle(world) == "done"
    assert _errors(world) == {record_id: 1}
    if leaves == "deleted":
        world.dynamics.delete_record("lead", 5)
    else:
        world.dynamics.update_record("lead", 5, new_synctomkto=False)
    assert _cycle(world) == "done"
    assert _errors(world) == {}
    assert world.store.sync_errors.resolved_counts("T1", world.connection.id) == {resolution: 1}


def test_a_changed_password_alerts_once_and_recovers_once(world: SyncHarness) -> None:
    user = world.dynamics.config.users[0]
    user.password = "Changed-42!"
    for _ in range(3):
        assert _cycle(world) == "failed"
    posts = [m for m in world.slack.messages(CHANNEL) if "credentials rejected" in m.text]
    assert len(posts) == 1
    actions = [e["action_id"] for b in posts[0].blocks if b["type"] == "actions" for e in b["elements"]]
    assert actions == ["renew_credentials"]
    state = world.store.alert_states.get("T1", world.connection.id, Condition.credentials.value)
    assert state.level == Level.alerting and state.message_ts == posts[0].ts

    user.password = "Passw0rd!"
    for _ in range(2):
        assert _cycle(world) == "done"
    assert len(_posts(world, "Signing in to Dynamics works again")) == 1
    assert len([m for m in world.slack.messages(CHANNEL) if "credentials rejected" in m.text]) == 1
