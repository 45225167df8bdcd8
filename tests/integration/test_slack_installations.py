"""Slack installations and OAuth state in Redis: sealed, keyed per workspace or per enterprise,
latest plus history, token rotation fields kept, revocation, one-time state."""

from __future__ import annotations

import time

import redis
from slack_sdk.oauth.installation_store import Bot, Installation

from bot.store import Store


def _installation(team: str | None = "T1", *, enterprise: str | None = None, user: str = "U1",
                  token: str = "xoxb-secret-1", org_wide: bool = False, **extra: object) -> Installation:
    return Installation(app_id="A1", enterprise_id=enterprise, team_id=team, team_name="Team", bot_token=token,
                        bot_id="B1", bot_user_id="UBOT", bot_scopes=["commands", "chat:write"], user_id=user,
                        user_token="xoxp-user-secret", is_enterprise_install=org_wide, **extra)


def _raw_values(redis_client: redis.Redis, prefix: str) -> list[bytes]:
    values = []
    for key in redis_client.scan_iter(match=f"{prefix}:*"):
        if redis_client.type(key) == b"string":
            values.append(redis_client.get(key))
        else:
            values.extend(redis_client.lrange(key, 0, -1))
    return values


def test_saved_installation_is_found_and_its_tokens_are_sealed(store: Store, redis_client: redis.Redis,
                                                               key_prefix: str) -> None:
    store.installations.save(_installation())
    found = store.installations.find_installation(enterprise_id=None, team_id="T1")
    assert found is not None and found.bot_token == "xoxb-secret-1" and found.user_token == "xoxp-user-secret"
    assert found.bot_scopes == ["commands", "chat:write"]
    bot = store.installations.find_bot(enterprise_id=None, team_id="T1")
    assert bot is not None and bot.bot_token == "xoxb-secret-1" and bot.bot_user_id == "UBOT"
    raw = b"".join(_raw_values(redis_client, key_prefix))
    assert raw and b"xoxb-secret-1" not in raw and b"xoxp-user-secret" not in raw and b"\"team_id\"" not in raw
    assert store.installations.find_installation(enterprise_id=None, team_id="T2") is None


def test_latest_per_team_and_per_user_and_history(store: Store) -> None:
    store.installations.save(_installation(user="U1", token="xoxb-first"))
    store.installations.save(_installation(user="U2", token="xoxb-second"))
    latest = store.installations.find_installation(enterprise_id=None, team_id="T1")
    assert latest is not None and latest.user_id == "U2" and latest.bot_token == "xoxb-second"
    first_user = store.installations.find_installation(enterprise_id=None, team_id="T1", user_id="U1")
    # the installer's own record, with the bot token brought up to date
    assert first_user is not None and first_user.user_id == "U1" and first_user.bot_token == "xoxb-second"
    history = store.installations.history(enterprise_id=None, team_id="T1")
    assert [i.bot_token for i in history] == ["xoxb-second", "xoxb-first"]


def test_token_rotation_fields_round_trip(store: Store) -> None:
    expires = int(time.time()) + 43_200
    store.installations.save(_installation(bot_refresh_token="xoxe-1-refresh", bot_token_expires_at=expires,
                                           user_refresh_token="xoxe-1-user", user_token_expires_at=expires + 5))
    found = store.installations.find_installation(enterprise_id=None, team_id="T1")
    assert found is not None
    assert (found.bot_refresh_token, found.bot_token_expires_at) == ("xoxe-1-refresh", expires)
    assert (found.user_refresh_token, found.user_token_expires_at) == ("xoxe-1-user", expires + 5)
    rotated = Bot(team_id="T1", bot_token="xoxb-rotated", bot_id="B1", bot_user_id="UBOT",
                  bot_refresh_token="xoxe-1-refresh-2", bot_token_expires_at=expires + 100, installed_at=time.time())
    store.installations.save_bot(rotated)
    bot = store.installations.find_bot(enterprise_id=None, team_id="T1")
    assert bot is not None and (bot.bot_token, bot.bot_refresh_token, bot.bot_token_expires_at) == (
        "xoxb-rotated", "xoxe-1-refresh-2", expires + 100)
    again = store.installations.find_installation(enterprise_id=None, team_id="T1")
    assert again is not None and again.bot_token == "xoxb-rotated" and again.bot_refresh_token == "xoxe-1-refresh-2"


def test_org_wide_install_is_keyed_by_enterprise(store: Store) -> None:
    store.installations.save(_installation(None, enterprise="E1", org_wide=True, token="xoxb-org"))
    store.installations.save(_installation("T9", enterprise="E1", token="xoxb-workspace"))
    org = store.installations.find_installation(enterprise_id="E1", team_id=None, is_enterprise_install=True)
    assert org is not None and org.bot_token == "xoxb-org" and org.is_enterprise_install
    # a request from any workspace of the org, flagged org-wide, finds the org's install
    assert store.installations.find_bot(enterprise_id="E1", team_id="T5",
                                        is_enterprise_install=True).bot_token == "xoxb-org"
    # a workspace install inside the grid is its own
    assert store.installations.find_bot(enterprise_id="E1", team_id="T9").bot_token == "xoxb-workspace"
    assert store.installations.find_bot_for_team("T5") is None
    store.installations.remember_enterprise("T5", "E1")
    assert store.installations.find_bot_for_team("T5").bot_token == "xoxb-org"
    assert store.installations.find_bot_for_team("T9").bot_token == "xoxb-workspace"


def test_revocation(store: Store) -> None:
    store.installations.save(_installation(user="U1"))
    store.installations.save(_installation(user="U2"))
    store.installations.delete_installation(enterprise_id=None, team_id="T1", user_id="U1")
    assert store.installations.find_installation(enterprise_id=None, team_id="T1", user_id="U1") is None
    assert store.installations.find_installation(enterprise_id=None, team_id="T1") is not None
    store.installations.delete_bot(enterprise_id=None, team_id="T1")
    assert store.installations.find_bot(enterprise_id=None, team_id="T1") is None
    store.installations.delete_all(enterprise_id=None, team_id="T1")
    assert store.installations.find_installation(enterprise_id=None, team_id="T1") is None
    assert store.installations.find_installation(enterprise_id=None, team_id="T1", user_id="U2") is None
    assert store.installations.history(enterprise_id=None, team_id="T1") == []


def test_oauth_state_is_one_time_and_expires(store: Store) -> None:
    states = store.oauth_states("state-secret", expiration_seconds=1)
    state = states.issue()
    other = states.issue()
    assert state != other
    assert states.consume(state)
    assert not states.consume(state)
    assert not states.consume("never-issued")
    nonce = other.partition(".")[0]
    assert not store.oauth_states("another-secret", 1).consume(other)  # signed with another secret
    assert not states.consume(f"{nonce}.forged")
    deadline = time.monotonic() + 5
    while store.redis.exists(store.keys.oauth_state(nonce)):  # expiry is Redis's: poll for it
        assert time.monotonic() < deadline, "the state never expired"
        time.sleep(0.05)
    assert not states.consume(other)


def test_rotate_key_reseals_installations(redis_client: redis.Redis, key_prefix: str) -> None:
    from cryptography.fernet import Fernet

    from bot.crypto import SecretBox

    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    Store(redis_client, SecretBox(old), prefix=key_prefix).installations.save(_installation())
    report = Store(redis_client, SecretBox(f"{new},{old}"), prefix=key_prefix).rotate_secrets()
    assert report.rotated >= 3 and not report.unreadable  # latest, per user, bot
    bot = Store(redis_client, SecretBox(new), prefix=key_prefix).installations.find_bot(enterprise_id=None,
                                                                                       team_id="T1")
    assert bot is not None and bot.bot_token == "xoxb-secret-1"
