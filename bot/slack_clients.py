"""The Slack client for a workspace, for Web API calls made outside a Slack request (workers'
notices, approval messages updated after a decision).

One workspace (`SLACK_BOT_TOKEN`): always the one client. Installed through Slack OAuth: the bot
token of that team's installation, refreshed first when it rotates and is due (Bolt refreshes
tokens only on incoming requests; a worker must do it itself, one process at a time per install,
since a refresh token works once).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol

from slack_sdk import WebClient
from slack_sdk.oauth.installation_store import Bot
from slack_sdk.oauth.token_rotation import TokenRotator

from bot.errors import BotError
from bot.store.installations import RedisInstallationStore

ROTATION_WAIT_SECONDS = 10.0

ClientFactory = Callable[[str | None], WebClient]
"""Builds a WebClient (API URL, CA bundle, retries configured) for a bot token, or none."""


class NotInstalled(BotError):
    def __init__(self, team_id: str) -> None:
        super().__init__(f"The app is not installed in workspace {team_id} (or was uninstalled): "
                         "a workspace admin can install it again through /slack/install.")


class SlackClients(Protocol):
    def for_team(self, team_id: str) -> WebClient: ...


class OneWorkspace:
    """Single-token mode: every team is the one workspace of `SLACK_BOT_TOKEN`."""

    def __init__(self, client: WebClient) -> None:
        self.client = client

    def for_team(self, team_id: str) -> WebClient:
        return self.client


class InstalledWorkspaces:
    def __init__(self, installations: RedisInstallationStore, build: ClientFactory, *, client_id: str,
                 client_secret: str, rotate_minutes_before: int) -> None:
        self.installations = installations
        self.build = build
        self.rotator = TokenRotator(client_id=client_id, client_secret=client_secret, client=build(None))
        self.rotate_minutes_before = rotate_minutes_before

    def for_team(self, team_id: str) -> WebClient:
        bot = self.installations.find_bot_for_team(team_id)
        if bot is None:
            raise NotInstalled(team_id)
        if self._due(bot):
            bot = self._rotate(team_id, bot)
        return self.build(bot.bot_token)

    def _due(self, bot: Bot) -> bool:
        expires_at = bot.bot_token_expires_at
        return bool(bot.bot_refresh_token) and expires_at is not None and (
            expires_at <= time.time() + self.rotate_minutes_before * 60)

    def _rotate(self, team_id: str, bot: Bot) -> Bot:
        """Refresh under the install's lease; whoever waited reads the token the holder saved."""
        lease = self.installations.rotation_lease(bot)
        if not lease.take(wait=ROTATION_WAIT_SECONDS):
            return self.installations.find_bot_for_team(team_id) or bot
        try:
            current = self.installations.find_bot_for_team(team_id) or bot
            if not self._due(current):
                return current
            rotated = self.rotator.perform_bot_token_rotation(
                bot=current, minutes_before_expiration=self.rotate_minutes_before)
            if rotated is None:
                return current
            self.installations.save_bot(rotated)
            return rotated
        finally:
            lease.release()
