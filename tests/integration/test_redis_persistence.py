"""The worker's start-up check of Redis persistence, against real Redis."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator

import pytest
import redis

from bot.store import jobs
from bot.store.persistence import warn_without_persistence
from tests.conftest import REDIS_URL

WARNING_TEXT = "Redis keeps no data across a restart"


def _persists(client: redis.Redis) -> bool:
    return client.info("persistence")["aof_enabled"] == 1 or bool(client.config_get("save")["save"])


def test_a_redis_without_aof_or_snapshots_is_warned_about(redis_client, caplog) -> None:
    if _persists(redis_client):
        pytest.skip("this Redis persists its data; the tests expect one without (as .ci/run starts it)")
    with caplog.at_level(logging.INFO, logger="bot.store.persistence"):
        found = warn_without_persistence(redis_client)
    assert found.none
    assert [r.levelname for r in caplog.records if WARNING_TEXT in r.getMessage()] == ["WARNING"]



def test_the_worker_warns_at_start_up(redis_client, key_prefix, caplog) -> None:
    if _persists(redis_client):
        pytest.skip("this Redis persists its data; the tests expect one without (as .ci/run starts it)")
    worker = jobs.worker([jobs.queue(redis_client, key_prefix, "sync")], redis_client)
    with caplog.at_level(logging.INFO, logger="bot.store.persistence"):
        worker.work(burst=True)
    assert len([r for r in caplog.records if WARNING_TEXT in r.getMessage()]) == 1

@pytest.fixture
def no_config_client(redis_client: redis.Redis) -> Iterator[redis.Redis]:
    """A user that may do anything but CONFIG, as on managed Redis services."""
    name, password = f"cd-test-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    redis_client.acl_setuser(name, enabled=True, passwords=[f"+{password}"], keys=["*"], channels=["*"],
                             commands=["+@all", "-config"])
    client = redis.Redis.from_url(REDIS_URL, username=name, password=password)
    yield client
    client.close()
    redis_client.acl_deluser(name)


def test_when_config_is_refused_nothing_is_claimed(redis_client, no_config_client, caplog) -> None:
    if redis_client.info("persistence")["aof_enabled"] == 1:
        pytest.skip("this Redis has AOF on; the case needs one without")
    with caplog.at_level(logging.INFO, logger="bot.store.persistence"):
        found = warn_without_persistence(no_config_client)
    assert found.snapshots is None and not found.none
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert any("could not tell" in r.getMessage() for r in caplog.records)
