"""The root of every typed error the bot raises on purpose.

Each carries `user_message`: plain language a Slack user can act on. Handlers map any
`BotError` to that message; anything else becomes a generic apology (and a log line).
"""

from __future__ import annotations


class BotError(Exception):
    user_message: str = "Something went wrong. Please try again in a moment."

    def __init__(self, user_message: str | None = None, *, detail: str | None = None) -> None:
        if user_message:
            self.user_message = user_message
        super().__init__(detail or self.user_message)


class PermissionDenied(BotError):
    """The Slack user lacks the role this action needs."""


class FlowError(BotError):
    """The action does not fit the state the connection is in."""
