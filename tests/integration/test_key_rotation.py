"""ENCRYPTION_KEY with several keys (newest first) and `connect-dynamics rotate-key`, on real Redis."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import redis
from cryptography.fernet import Fernet

from bot.crypto import SecretBox, SecretUnreadable
from bot.models import Credentials
from bot.store import Store
from bot.store.webhooks import DynamicsWebhook
from tests.conftest import REDIS_URL

CREDS = Credentials(username="sync@contoso.com", password="Passw0rd!", url="https://org.crm.dynamics.com")


def new_key() -> str:
    return Fernet.generate_key().decode()


def store_with(client: redis.Redis, prefix: str, *keys: str) -> Store:
    return Store(client, SecretBox(",".join(keys)), prefix=prefix)


def test_old_secrets_are_read_once_a_new_key_is_put_in_front(redis_client: redis.Redis, key_prefix: str) -> None:
    old, new = new_key(), new_key()
    store_with(redis_client, key_prefix, old).save_credentials("T1", "c1", CREDS)
    both = store_with(redis_client, key_prefix, new, old)
    assert both.load_credentials("T1", "c1") == CREDS
    both.save_credentials("T2", "c2", CREDS)  # sealed with the newest key
    assert store_with(redis_client, key_prefix, new).load_credentials("T2", "c2") == CREDS
    with pytest.raises(SecretUnreadable):
        store_with(redis_client, key_prefix, new).load_credentials("T1", "c1")


def test_after_rotation_the_new_key_alone_reads_every_secret(redis_client: redis.Redis, key_prefix: str) -> None:
    old, new = new_key(), new_key()
    before = store_with(redis_client, key_prefix, old)
    before.save_credentials("T1", "c1", CREDS)
    before.save_credentials("T1", "c2", CREDS)
    before.save_credentials("T2", "c3", CREDS)
    before.marketo_token("https://m.example", "client").save("marketo-token", ttl=600)
    before.save_draft("T1", "U1", {"username": "creds:look-alike"})  # not a secret: left alone

    both = store_with(redis_client, key_prefix, new, old)
    report = both.rotate_secrets()
    assert (report.rotated, report.unreadable) == (4, [])
    assert both.rotate_secrets().rotated == 4  # idempotent: again, nothing lost

    after = store_with(redis_client, key_prefix, new)
    assert [after.load_credentials(t, c) for t, c in (("T1", "c1"), ("T1", "c2"), ("T2", "c3"))] == [CREDS] * 3
    token = after.marketo_token("https://m.example", "client")
    assert token.load() == "marketo-token"
    [token_key] = redis_client.scan_iter(match=after.keys.marketo_tokens_pattern())
    assert 0 < redis_client.ttl(token_key) <= 600  # its expiry kept


def test_a_dataverse_webhook_key_is_rotated_too(redis_client: redis.Redis, key_prefix: str) -> None:
    old, new = new_key(), new_key()
    webhook = DynamicsWebhook(endpoint_id="e1", step_ids=["s1"], key="webhook-key", entities=["lead"])
    assert store_with(redis_client, key_prefix, old).webhooks.save_dynamics_webhook("T1", "c1", webhook)
    assert store_with(redis_client, key_prefix, new, old).rotate_secrets().rotated == 1
    assert store_with(redis_client, key_prefix, new).webhooks.dynamics_webhook("T1", "c1") == webhook


def test_a_secret_sealed_with_an_unknown_key_is_reported(redis_client: redis.Redis, key_prefix: str) -> None:
    lost, current = new_key(), new_key()
    store_with(redis_client, key_prefix, lost).save_credentials("T1", "gone", CREDS)
    store_with(redis_client, key_prefix, current).save_credentials("T1", "kept", CREDS)
    report = store_with(redis_client, key_prefix, current).rotate_secrets()
    assert report.rotated == 1 and report.unreadable == ["T1/gone"]


def test_the_rotate_key_command_reports_counts_and_unreadable_connections(redis_client: redis.Redis,
                                                                          key_prefix: str) -> None:
    old, new, lost = new_key(), new_key(), new_key()
    store_with(redis_client, key_prefix, old).save_credentials("T1", "c1", CREDS)
    store_with(redis_client, key_prefix, lost).save_credentials("T1", "c9", CREDS)
    env = {**os.environ, "REDIS_URL": REDIS_URL, "REDIS_KEY_PREFIX": key_prefix, "ENCRYPTION_KEY": f"{new},{old}"}
    result = subprocess.run([sys.executable, "-m", "bot.cli", "rotate-key"], env=env, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 1, result.stderr
    assert "1 secret(s) now sealed with the newest key" in result.stdout
    assert "T1/c9" in result.stdout and "T1/c1" not in result.stdout
    assert store_with(redis_client, key_prefix, new).load_credentials("T1", "c1") == CREDS
    assert new not in result.stdout + result.stderr and old not in result.stdout + result.stderr


def test_a_bad_entry_of_the_key_list_is_named_by_position_not_echoed() -> None:
    env = {**os.environ, "REDIS_URL": REDIS_URL, "ENCRYPTION_KEY": f"{new_key()},not-a-fernet-key"}
    result = subprocess.run([sys.executable, "-m", "bot.cli", "rotate-key"], env=env, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "ENCRYPTION_KEY" in result.stderr and "entry 2 of 2" in result.stderr
    assert "not-a-fernet-key" not in result.stderr
