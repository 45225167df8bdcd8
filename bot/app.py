"""Builds the Bolt app and registers the handlers (one listener per kind of request).

With SLACK_CLIENT_ID, SLACK_CLIENT_SECRET and SLACK_STATE_SECRET the app installs in any
workspace through Slack OAuth: `/slack/install` and `/slack/oauth_redirect` are Bolt's, the
installations and the OAuth state live in Redis, and each request runs with its workspace's bot
token (refreshed by Bolt when it rotates). Otherwise it serves the one workspace of SLACK_BOT_TOKEN.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from urllib.parse import urlsplit

from slack_bolt import App, BoltContext, BoltResponse
from slack_bolt.oauth.oauth_settings import OAuthSettings

from bot.container import Container

INSTALL_PATH = "/slack/install"
REDIRECT_PATH = "/slack/oauth_redirect"
# The bot scopes of manifest.yml (a test keeps the two equal).
BOT_SCOPES = ("commands", "chat:write", "im:write", "files:write", "users:read")
OAUTH_STATE_SECONDS = 600


def build_app(container: Container) -> App:
    """`process_before_response=True`: each listener acks and hands slow work to the background
    pool itself, so Bolt's own small listener pool never holds a thread past the ack."""
    from handlers.router import register

    oauth = container.settings.oauth_enabled
    app = App(
        client=container.slack,
        signing_secret=container.settings.secret("SLACK_SIGNING_SECRET") or "socket-mode",
        process_before_response=True,
        token_verification_enabled=False,
        logger=logging.getLogger("bolt"),
        oauth_settings=oauth_settings(container) if oauth else None,
    )
    if oauth:
        app.enable_token_revocation_listeners()
        app.middleware(remember_org_wide_workspaces(container))
    register(app, container)
    return app


def oauth_settings(container: Container) -> OAuthSettings:
    s = container.settings
    api = urlsplit(s.SLACK_API_URL)
    return OAuthSettings(
        client_id=s.SLACK_CLIENT_ID,
        client_secret=s.secret("SLACK_CLIENT_SECRET"),
        scopes=list(BOT_SCOPES),
        installation_store=container.store.installations,
        state_store=container.store.oauth_states(s.secret("SLACK_STATE_SECRET"), OAUTH_STATE_SECONDS),
        state_expiration_seconds=OAUTH_STATE_SECONDS,
        install_path=INSTALL_PATH,
        redirect_uri_path=REDIRECT_PATH,
        # Slack's own authorize page is next to its API (slack.com); the emulator's is next to its own.
        authorization_url=f"{api.scheme}://{api.netloc}/oauth/v2/authorize",
        token_rotation_expiration_minutes=s.SLACK_TOKEN_ROTATION_MINUTES,
    )


def remember_org_wide_workspaces(container: Container) -> Callable[..., BoltResponse | None]:
    """A request from a workspace served by an org-wide install tells which enterprise serves it, so
    that workers (which know only the team id of a record) find the bot token."""

    def remember(context: BoltContext, next: Callable[[], BoltResponse]) -> BoltResponse | None:  # noqa: A002 - Bolt's name
        if context.is_enterprise_install and context.enterprise_id and context.team_id:
            container.store.installations.remember_enterprise(context.team_id, context.enterprise_id)
        return next()

    return remember
