"""The Bolt app with Slack OAuth on, in process over real Redis and the Slack emulator: requests are
authorized from the stored installations (an Enterprise Grid org-wide one included), and a workspace
served by an org-wide install is remembered so workers find its bot by team id alone."""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Iterator
from urllib.parse import urlencode

import pytest
import redis
from slack_bolt import App, BoltRequest
from slack_sdk.oauth.installation_store import Installation

from bot.app import build_app
from bot.config import Settings
from bot.container import Container
from sandbox.slack import SlackEmulator

SIGNING_SECRET = "oauth-app-secret"
ENTERPRISE, WORKSPACE = "E0GRID001", "T0INGRID1"


@pytest.fixture
def slack() -> Iterator[SlackEmulator]:
    with SlackEmulator() as emulator:
        yield emulator


@pytest.fixture
def container(slack: SlackEmulator, redis_client: redis.Redis, key_prefix: str,
              encryption_key: str) -> Iterator[Container]:
    settings = Settings(ENCRYPTION_KEY=encryption_key, REDIS_KEY_PREFIX=key_prefix, SLACK_API_URL=slack.api_url,
                        SLACK_SIGNING_SECRET=SIGNING_SECRET, SLACK_CLIENT_ID=slack.client_id,
                        SLACK_CLIENT_SECRET=slack.client_secret, SLACK_STATE_SECRET="state")
    running = Container(settings, redis_client)
    yield running
    running.background.shutdown()


def signed_command(team_id: str, enterprise_id: str | None, text: str) -> BoltRequest:
    fields = {"command": "/connect-dynamics", "text": text, "team_id": team_id, "user_id": "U0SOMEONE",
              "channel_id": "C1", "trigger_id": "t1"}
    if enterprise_id:
        fields.update(enterprise_id=enterprise_id, is_enterprise_install="true")
    body = urlencode(fields)
    timestamp = str(int(time.time()))
    signature = "v0=" + hmac.new(SIGNING_SECRET.encode(), f"v0:{timestamp}:{body}".encode(),
                                 hashlib.sha256).hexdigest()
    return BoltRequest(body=body, headers={"content-type": ["application/x-www-form-urlencoded"],
                                           "x-slack-request-timestamp": [timestamp],
                                           "x-slack-signature": [signature]})


def test_an_org_wide_install_serves_its_workspaces(slack: SlackEmulator, container: Container) -> None:
    app: App = build_app(container)
    assert app.oauth_flow is not None and app.oauth_flow.settings.scopes  # the manifest's bot scopes
    container.store.installations.save(Installation(
        enterprise_id=ENTERPRISE, team_id=None, is_enterprise_install=True, bot_token=slack.bot_token, bot_id="B1",
        bot_user_id="UBOT", user_id="U0GRIDADM"))
    assert container.store.installations.find_bot_for_team(WORKSPACE) is None

    response = app.dispatch(signed_command(WORKSPACE, ENTERPRISE, "help"))
    assert response.status == 200 and "/connect-dynamics" in response.body
    assert slack.calls("auth.test"), "authorized with the org-wide install's token"
    bot = container.store.installations.find_bot_for_team(WORKSPACE)
    assert bot is not None and bot.bot_token == slack.bot_token
    assert container.slack_clients.for_team(WORKSPACE).token == slack.bot_token


def test_a_workspace_with_no_installation_is_not_served(slack: SlackEmulator, container: Container) -> None:
    response = build_app(container).dispatch(signed_command("T0UNKNOWN", None, "help"))
    assert response.status == 200 and "reinstall this app" in response.body  # Bolt's answer; no handler ran
    assert not slack.calls("auth.test")
