"""Fernet encryption for secrets at rest."""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken

from bot.errors import BotError


class SecretUnreadable(BotError):
    user_message = "Saved credentials cannot be read (was ENCRYPTION_KEY changed?). Please enter them again."


class SecretBox:
    def __init__(self, key: str) -> None:
        self._fernet = Fernet(key.encode() if isinstance(key, str) else key)

    def seal(self, plaintext: bytes) -> bytes:
        return self._fernet.encrypt(plaintext)

    def open(self, token: bytes) -> bytes:
        try:
            return self._fernet.decrypt(token)
        except InvalidToken as exc:
            raise SecretUnreadable() from exc
