"""The Slack client per workspace, for calls made outside a request: the installation's bot token,
refreshed once (under a lease) when it rotates and is due; the one client in single-token mode."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from slack_sdk import WebClient
from slack_sdk.oauth.installation_store import Installation

from bot.slack_clients import InstalledWorkspaces, NotInstalled, OneWorkspace
from bot.store import Store
from sandbox.slack import SlackEmulator

TEAM = "T0ROTATE1"


@pytest.fixture
def slack() -> Iterator[SlackEmulator]:
    with SlackEmulator(token_rotation=True) as emulator:  # 12 h tokens, as Slack's
        yield emulator


def install(slack: SlackEmulator, store: Store, *, expires_in: int | None = None) -> Installation:
    """What Bolt's redirect handler does with the code Slack sends back; `expires_in` ages the token."""
    allowed = httpx.get(f"{slack.url}/oauth/v2/authorize", params={
        "client_id": slack.client_id, "redirect_uri": "https://bot.example.com/slack/oauth_redirect", "team": TEAM,
        "state": "s"})
    code = parse_qs(urlsplit(allowed.headers["location"]).query)["code"][0]
    granted = WebClient(base_url=slack.api_url).oauth_v2_access(client_id=slack.client_id,
                                                                client_secret=slack.client_secret, code=code)
    installation = Installation(team_id=TEAM, bot_token=granted["access_token"], bot_id="B1",
                                bot_user_id=granted["bot_user_id"], bot_refresh_token=granted["refresh_token"],
                                bot_token_expires_in=expires_in or granted["expires_in"],
                                user_id=granted["authed_user"]["id"])
    store.installations.save(installation)
    return installation


def clients(slack: SlackEmulator, store: Store, minutes_before: int) -> InstalledWorkspaces:
    return InstalledWorkspaces(store.installations, lambda token: WebClient(token=token, base_url=slack.api_url),
                               client_id=slack.client_id, client_secret=slack.client_secret,
                               rotate_minutes_before=minutes_before)


def refreshes(slack: SlackEmulator) -> int:
    return sum(1 for call in slack.calls("oauth.v2.access") if call.args.get("grant_type") == "refresh_token")


def test_a_token_not_due_is_used_as_it_is(slack: SlackEmulator, store: Store) -> None:
    installed = install(slack, store)
    client = clients(slack, store, minutes_before=120).for_team(TEAM)
    assert client.token == installed.bot_token
    assert client.auth_test()["team_id"] == TEAM
    assert refreshes(slack) == 0


def test_a_due_token_is_refreshed_once_by_concurrent_callers(slack: SlackEmulator, store: Store) -> None:
    installed = install(slack, store, expires_in=600)  # 10 minutes left: due
    per_team = clients(slack, store, minutes_before=120)
    with ThreadPoolExecutor(max_workers=4) as pool:
        tokens = {client.token for client in pool.map(lambda _: per_team.for_team(TEAM), range(4))}
    assert refreshes(slack) == 1
    (token,) = tokens
    assert token != installed.bot_token and token == slack.installed_token(TEAM)
    bot = store.installations.find_bot(enterprise_id=None, team_id=TEAM)
    assert bot is not None and bot.bot_token == token and bot.bot_refresh_token != installed.bot_refresh_token
    assert bot.bot_token_expires_at is not None and bot.bot_token_expires_at > time.time() + 11 * 3600
    assert WebClient(token=token, base_url=slack.api_url).auth_test()["team_id"] == TEAM


def test_a_workspace_never_installed(slack: SlackEmulator, store: Store) -> None:
    with pytest.raises(NotInstalled) as raised:
        clients(slack, store, minutes_before=120).for_team("T0NOWHERE")
    assert "/slack/install" in raised.value.user_message


def test_single_token_mode_is_the_one_client() -> None:
    one = WebClient(token="xoxb-one")
    assert OneWorkspace(one).for_team("T1") is one and OneWorkspace(one).for_team("T2") is one
