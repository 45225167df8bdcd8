"""Fernet encryption for secrets at rest, with key rotation.

`ENCRYPTION_KEY` holds one Fernet key or several, comma-separated, newest first. Secrets are
sealed with the newest and opened with any (`MultiFernet`), so a new key can be put in front
while secrets sealed with the old one are still read; `rotate` re-seals a secret with the
newest key, after which the old key can be removed.
"""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from bot.errors import BotError


class SecretUnreadable(BotError):
    user_message = "Saved credentials cannot be read (was ENCRYPTION_KEY changed?). Please enter them again."


class InvalidEncryptionKey(ValueError):
    """An entry of `ENCRYPTION_KEY` that is not a Fernet key; names its position, never the key."""

    def __init__(self, position: int, count: int) -> None:
        self.position = position
        where = "it" if count == 1 else f"entry {position} of {count} (counting from 1, newest first)"
        super().__init__(f"{where} must be a Fernet key (32 url-safe base64-encoded bytes)")


def parse_keys(keys: str) -> list[Fernet]:
    """The Fernet keys of a comma-separated `ENCRYPTION_KEY`, newest first.

    Raises InvalidEncryptionKey naming the first entry that is not a Fernet key (an empty list too)."""
    entries = [entry.strip() for entry in keys.split(",")]
    fernets = []
    for position, entry in enumerate(entries, start=1):
        try:
            fernets.append(Fernet(entry.encode()))
        except ValueError:
            raise InvalidEncryptionKey(position, len(entries)) from None
    return fernets


class SecretBox:
    def __init__(self, keys: str) -> None:
        self._fernet = MultiFernet(parse_keys(keys))

    def seal(self, plaintext: bytes) -> bytes:
        return self._fernet.encrypt(plaintext)

    def open(self, token: bytes | str) -> bytes:
        try:
            return self._fernet.decrypt(token)
        except InvalidToken as exc:
            raise SecretUnreadable() from exc

    def rotate(self, token: bytes | str) -> bytes:
        """`token` sealed again with the newest key (its original timestamp kept)."""
        try:
            return self._fernet.rotate(token)
        except InvalidToken as exc:
            raise SecretUnreadable() from exc
