"""Slack installations and OAuth state in Redis, behind slack_sdk's `InstallationStore` and
`OAuthStateStore` interfaces (Bolt's OAuth flow and its per-request authorization call them).

Every installation record is sealed whole with the project's `SecretBox` (bot, user and refresh
tokens never reach Redis in clear). Keys are per owner: `team:{T}` for a workspace install
(Slack team ids are unique, inside an Enterprise Grid too) and `enterprise:{E}` for an org-wide
install, whose requests arrive with `team_id=None`. Under each owner: the latest installation,
the latest per installing user, the latest bot, and a bounded history of every install.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from logging import Logger
from typing import Any

import redis
from pydantic import BaseModel, Field
from slack_sdk.oauth.installation_store import Bot, Installation, InstallationStore
from slack_sdk.oauth.state_store import OAuthStateStore

from bot.crypto import SecretBox, SecretUnreadable
from bot.store.connection import as_text
from bot.store.keys import Keys
from bot.store.locks import Lease

HISTORY_LENGTH = 50
LATEST = "latest"
BOT = "bot"
HISTORY = "history"

log = logging.getLogger(__name__)


class StoredInstallation(BaseModel):
    """An `Installation` (or a `Bot`, with no installing user) as kept in Redis, before sealing."""

    app_id: str | None = None
    enterprise_id: str | None = None
    enterprise_name: str | None = None
    enterprise_url: str | None = None
    team_id: str | None = None
    team_name: str | None = None
    bot_token: str | None = None
    bot_id: str | None = None
    bot_user_id: str | None = None
    bot_scopes: list[str] = Field(default_factory=list)
    bot_refresh_token: str | None = None
    bot_token_expires_at: int | None = None
    user_id: str | None = None
    user_token: str | None = None
    user_scopes: list[str] = Field(default_factory=list)
    user_refresh_token: str | None = None
    user_token_expires_at: int | None = None
    incoming_webhook_url: str | None = None
    incoming_webhook_channel: str | None = None
    incoming_webhook_channel_id: str | None = None
    incoming_webhook_configuration_url: str | None = None
    is_enterprise_install: bool = False
    token_type: str | None = None
    installed_at: float
    custom_values: dict[str, Any] = Field(default_factory=dict)

    @classmethod
    def of(cls, source: Installation | Bot) -> StoredInstallation:
        values = {name: getattr(source, name, None) for name in cls.model_fields}
        return cls.model_validate({name: value for name, value in values.items() if value is not None})

    def installation(self) -> Installation:
        return Installation(**self.model_dump(exclude={"user_id"}), user_id=self.user_id or "")

    def bot(self) -> Bot | None:
        if not self.bot_token or not self.bot_id or not self.bot_user_id:
            return None
        return Bot(app_id=self.app_id, enterprise_id=self.enterprise_id, enterprise_name=self.enterprise_name,
                   team_id=self.team_id, team_name=self.team_name, bot_token=self.bot_token, bot_id=self.bot_id,
                   bot_user_id=self.bot_user_id, bot_scopes=self.bot_scopes, bot_refresh_token=self.bot_refresh_token,
                   bot_token_expires_at=self.bot_token_expires_at, is_enterprise_install=self.is_enterprise_install,
                   installed_at=self.installed_at, custom_values=self.custom_values)


def owner_of(enterprise_id: str | None, team_id: str | None, is_enterprise_install: bool | None) -> str:
    """The key owner of an install: the enterprise for an org-wide install, else the workspace."""
    if is_enterprise_install or not team_id:
        if not enterprise_id:
            raise ValueError("an installation needs a team id, or an enterprise id when org-wide")
        return f"enterprise:{enterprise_id}"
    return f"team:{team_id}"


class RedisInstallationStore(InstallationStore):
    def __init__(self, client: redis.Redis, keys: Keys, box: SecretBox) -> None:
        self._redis, self._keys, self._box = client, keys, box

    @property
    def logger(self) -> Logger:
        return log

    # -- writing ----------------------------------------------------------------------------------
    def save(self, installation: Installation) -> None:
        owner = owner_of(installation.enterprise_id, installation.team_id, installation.is_enterprise_install)
        sealed = self._seal(StoredInstallation.of(installation))
        key = self._keys.installation
        with self._redis.pipeline(transaction=True) as pipe:
            pipe.set(key(owner, LATEST), sealed)
            pipe.set(key(owner, "user", installation.user_id or "none"), sealed)
            pipe.lpush(key(owner, HISTORY), sealed)
            pipe.ltrim(key(owner, HISTORY), 0, HISTORY_LENGTH - 1)
            if installation.bot_token:
                pipe.set(key(owner, BOT), sealed)
            pipe.execute()

    def save_bot(self, bot: Bot) -> None:
        owner = owner_of(bot.enterprise_id, bot.team_id, bot.is_enterprise_install)
        self._redis.set(self._keys.installation(owner, BOT), self._seal(StoredInstallation.of(bot)))

    def remember_enterprise(self, team_id: str, enterprise_id: str) -> None:
        """A workspace served by an org-wide install: lets a worker find its bot by team id alone."""
        self._redis.set(self._keys.team_enterprise(team_id), enterprise_id)

    # -- reading ----------------------------------------------------------------------------------
    def find_bot(self, *, enterprise_id: str | None, team_id: str | None,
                 is_enterprise_install: bool | None = False) -> Bot | None:
        owner = owner_of(enterprise_id, team_id, is_enterprise_install)
        record = self._load(self._keys.installation(owner, BOT))
        return record.bot() if record is not None else None

    def find_installation(self, *, enterprise_id: str | None, team_id: str | None, user_id: str | None = None,
                          is_enterprise_install: bool | None = False) -> Installation | None:
        owner = owner_of(enterprise_id, team_id, is_enterprise_install)
        part = ("user", user_id) if user_id else (LATEST,)
        record = self._load(self._keys.installation(owner, *part))
        if record is None:
            return None
        bot = self._load(self._keys.installation(owner, BOT))
        if bot is not None and bot.bot_token != record.bot_token:
            # the bot token was rotated after this installer's record was written
            record = record.model_copy(update={name: getattr(bot, name) for name in (
                "bot_token", "bot_id", "bot_user_id", "bot_scopes", "bot_refresh_token", "bot_token_expires_at")})
        return record.installation()

    def find_bot_for_team(self, team_id: str) -> Bot | None:
        """The bot serving a workspace: its own install, else its enterprise's org-wide one."""
        bot = self.find_bot(enterprise_id=None, team_id=team_id)
        if bot is not None:
            return bot
        enterprise = self._redis.get(self._keys.team_enterprise(team_id))
        if enterprise is None:
            return None
        enterprise_id = as_text(enterprise)
        return self.find_bot(enterprise_id=enterprise_id, team_id=None, is_enterprise_install=True)

    def history(self, *, enterprise_id: str | None, team_id: str | None,
                is_enterprise_install: bool | None = False) -> list[Installation]:
        """Every install of an owner, newest first (at most `HISTORY_LENGTH`)."""
        owner = owner_of(enterprise_id, team_id, is_enterprise_install)
        rows = self._redis.lrange(self._keys.installation(owner, HISTORY), 0, -1)
        return [StoredInstallation.model_validate_json(self._box.open(row)).installation() for row in rows]

    # -- revocation -------------------------------------------------------------------------------
    def delete_bot(self, *, enterprise_id: str | None, team_id: str | None) -> None:
        self._redis.delete(self._keys.installation(owner_of(enterprise_id, team_id, None), BOT))

    def delete_installation(self, *, enterprise_id: str | None, team_id: str | None,
                            user_id: str | None = None) -> None:
        owner = owner_of(enterprise_id, team_id, None)
        if user_id:
            self._redis.delete(self._keys.installation(owner, "user", user_id))
            return
        self._redis.delete(self._keys.installation(owner, LATEST),
                           *self._redis.scan_iter(match=self._keys.installation(owner, "user", "*")))

    def delete_all(self, *, enterprise_id: str | None, team_id: str | None) -> None:
        owner = owner_of(enterprise_id, team_id, None)
        self.delete_installation(enterprise_id=enterprise_id, team_id=team_id)
        self._redis.delete(self._keys.installation(owner, BOT), self._keys.installation(owner, HISTORY))

    # -- token rotation ---------------------------------------------------------------------------
    def rotation_lease(self, bot: Bot, ttl: float = 30.0) -> Lease:
        """Two processes refreshing with one refresh token means one fails: one at a time per install."""
        owner = owner_of(bot.enterprise_id, bot.team_id, bot.is_enterprise_install)
        return Lease(self._redis, self._keys.token_rotation(owner), ttl, poll=0.05)

    # -- sealing ----------------------------------------------------------------------------------
    def _seal(self, record: StoredInstallation) -> bytes:
        return self._box.seal(record.model_dump_json().encode())

    def _load(self, key: str) -> StoredInstallation | None:
        sealed = self._redis.get(key)
        if sealed is None:
            return None
        try:
            return StoredInstallation.model_validate_json(self._box.open(sealed))
        except SecretUnreadable:
            log.warning("an installation record cannot be opened with ENCRYPTION_KEY: %s", key)
            return None


class RedisOAuthStateStore(OAuthStateStore):
    """One-time OAuth `state` values: issued with an expiry, consumed at most once (GETDEL).

    A state is `nonce.signature` (HMAC-SHA256 with SLACK_STATE_SECRET), so a forged or garbled
    one is refused before Redis is asked."""

    def __init__(self, client: redis.Redis, keys: Keys, secret: str, expiration_seconds: int) -> None:
        if not secret:
            raise ValueError("the OAuth state needs a secret")
        self._redis, self._keys, self._secret = client, keys, secret.encode()
        self.expiration_seconds = expiration_seconds

    @property
    def logger(self) -> Logger:
        return log

    def _signature(self, nonce: str) -> str:
        return hmac.new(self._secret, nonce.encode(), hashlib.sha256).hexdigest()

    def issue(self, *args: Any, **kwargs: Any) -> str:
        nonce = secrets.token_urlsafe(24)
        self._redis.set(self._keys.oauth_state(nonce), "1", ex=self.expiration_seconds)
        return f"{nonce}.{self._signature(nonce)}"

    def consume(self, state: str) -> bool:
        nonce, _, signature = state.partition(".")
        if not nonce or not hmac.compare_digest(signature, self._signature(nonce)):
            return False
        return self._redis.getdel(self._keys.oauth_state(nonce)) is not None
