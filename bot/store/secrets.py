"""Secrets kept in Redis only sealed (Fernet, the same `SecretBox` as the Dynamics credentials)."""

from __future__ import annotations

import redis

from bot.crypto import SecretBox, SecretUnreadable


class SealedValue:
    """One secret string under one key, with an expiry: the shared Marketo access token."""

    def __init__(self, client: redis.Redis, box: SecretBox, key: str) -> None:
        self._redis, self._box, self._key = client, box, key

    def load(self) -> str | None:
        """The value, or None when absent or sealed with a key no longer configured."""
        sealed = self._redis.get(self._key)
        if not sealed:
            return None
        try:
            return self._box.open(sealed).decode()
        except SecretUnreadable:
            return None

    def save(self, value: str, ttl: int) -> None:
        self._redis.set(self._key, self._box.seal(value.encode()), ex=ttl)

    def forget(self) -> None:
        self._redis.delete(self._key)
