"""Shared fixtures: a real Redis database per test, isolated by a unique key prefix."""

from __future__ import annotations

import compileall
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from cryptography.fernet import Fernet

from bot.crypto import SecretBox
from bot.store import Store
from bot.store.rq_prefix import rq_key_prefix

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/15")
RQ_KEY_PREFIX = rq_key_prefix()
ROOT = Path(__file__).resolve().parents[1]


def pytest_sessionstart(session: pytest.Session) -> None:
    """Compile the project's sources to bytecode once. The tests start many `python -m bot...`
    subprocesses; where PYTHONDONTWRITEBYTECODE is set (as in the image) none of them would cache
    what it compiled, and each would compile every module again before it could start."""
    for package in ("bot", "handlers", "sandbox"):
        compileall.compile_dir(ROOT / package, quiet=2)


@pytest.fixture
def redis_client() -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(REDIS_URL)
    client.ping()
    yield client
    client.close()


@pytest.fixture
def key_prefix(redis_client: redis.Redis) -> Iterator[str]:
    """A unique key prefix; every key under it, and every RQ key of its queues, is deleted after the test."""
    prefix = f"t{uuid.uuid4().hex[:10]}"
    yield prefix
    for pattern in (f"{prefix}:*", f"{RQ_KEY_PREFIX}:*{prefix}*"):
        for key in redis_client.scan_iter(match=pattern, count=1000):
            redis_client.delete(key)


@pytest.fixture
def encryption_key() -> str:
    return Fernet.generate_key().decode()


@pytest.fixture
def store(redis_client: redis.Redis, key_prefix: str, encryption_key: str) -> Store:
    return Store(redis_client, SecretBox(encryption_key), prefix=key_prefix)
