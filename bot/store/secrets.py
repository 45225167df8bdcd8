"""Secrets kept in Redis only sealed (Fernet, the same `SecretBox` as the Dynamics credentials),
and their rotation to the newest encryption key."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import redis
from redis.client import Pipeline

from bot.crypto import SecretBox, SecretUnreadable
from bot.store.connection import as_text
from bot.store.keys import Keys
from bot.store.transaction import Writes, transact


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


MARKETO_TOKEN = "the cached Marketo access token"
SLACK_INSTALLATION = "a Slack installation"
DYNAMICS_WEBHOOK = "a Dataverse webhook key"


@dataclass
class RotationReport:
    """What `rotate_secrets` did: how many secrets now use the newest key, and which could not be read."""

    rotated: int = 0
    unreadable: list[str] = field(default_factory=list)  # "team/connection id", or MARKETO_TOKEN



def sealed_keys(client: redis.Redis, keys: Keys) -> Iterator[tuple[str, str]]:
    """(Redis key, what it holds) for every sealed secret, found by SCAN: the Dynamics credentials of
    every connection of every team, the cached Marketo token of every instance, the Dataverse webhook
    keys, and the latest Slack installations (the install history, a list, keeps the key it was written with)."""
    for raw in client.scan_iter(match=keys.credentials_pattern(), count=1000):
        key = as_text(raw)
        owner = keys.credentials_of(key)
        if owner is not None:
            yield key, "/".join(owner)
    for raw in client.scan_iter(match=keys.marketo_tokens_pattern(), count=1000):
        yield as_text(raw), MARKETO_TOKEN
    for raw in client.scan_iter(match=keys.dynamics_webhooks_pattern(), count=1000):
        yield as_text(raw), DYNAMICS_WEBHOOK
    for raw in client.scan_iter(match=keys.installations_pattern(), count=1000, _type="string"):
        yield as_text(raw), SLACK_INSTALLATION


def rotate_secrets(client: redis.Redis, keys: Keys, box: SecretBox) -> RotationReport:
    """Seal every secret again with the newest key; each in its own optimistic transaction (a secret
    written meanwhile is rotated from its new value), its expiry kept. Running it twice is harmless."""
    report = RotationReport()
    for key, label in sealed_keys(client, keys):
        def body(pipe: Pipeline, key: str = key) -> tuple[Writes | None, bool | None]:
            sealed = pipe.get(key)
            if sealed is None:
                return None, None  # deleted since the scan
            try:
                rotated = box.rotate(sealed)
            except SecretUnreadable:
                return None, False
            return (lambda p: p.set(key, rotated, keepttl=True)), True

        outcome = transact(client, [key], body)
        if outcome is True:
            report.rotated += 1
        elif outcome is False:
            report.unreadable.append(label)
    return report
