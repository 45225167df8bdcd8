"""Installing in two workspaces through Slack OAuth, end to end: `connect-dynamics serve` with
SLACK_CLIENT_ID / SLACK_CLIENT_SECRET / SLACK_STATE_SECRET (no SLACK_BOT_TOKEN), a browser's trip
through `/slack/install` → the Slack emulator's authorize page → `/slack/oauth_redirect`, real
Redis, and signed requests from each workspace answered with that workspace's own bot token.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterator
from urllib.parse import urlencode

import httpx
import pytest
import redis

from bot.crypto import SecretBox
from bot.models import ApprovalStatus
from bot.store import Store, TeamSettings
from bot.views import ids
from sandbox.driver import SlackDriver
from sandbox.polling import wait_for
from sandbox.slack import UserProfile
from sandbox.stack import ADMIN, LEADS, SIGNING_SECRET, Stack
from sandbox.story import Story
from tests.conftest import REDIS_URL
from tests.support.processes import WebProcess

pytestmark = pytest.mark.e2e

TEAM_A = "T0001"  # the emulator's own workspace: the story of Steps 1-3 runs there
TEAM_B = "T0BBBBB02"
B_ADMIN, B_LEAD = "U0BADMIN1", "U0BLEAD01"
STATE_SECRET = "e2e-state-secret"


@pytest.fixture
def stack_options() -> dict:
    return {"leads": 40, "contacts": 20, "accounts": 10}


@pytest.fixture
def bot_env(stack: Stack, key_prefix: str) -> dict[str, str]:
    env = stack.env(REDIS_URL=REDIS_URL, REDIS_KEY_PREFIX=key_prefix, SLACK_CLIENT_ID=stack.slack.client_id,
                    SLACK_CLIENT_SECRET=stack.slack.client_secret, SLACK_STATE_SECRET=STATE_SECRET)
    del env["SLACK_BOT_TOKEN"]
    return env


@pytest.fixture
def bot_store(stack: Stack, key_prefix: str) -> Iterator[Store]:
    """The web process's store (its key prefix and encryption key)."""
    client = redis.Redis.from_url(REDIS_URL)
    yield Store(client, SecretBox(stack.encryption_key), prefix=key_prefix)
    client.close()


def install(web: WebProcess, stack: Stack, team_id: str, installer: str) -> httpx.Response:
    """What an admin's browser does: the install page, Allow on Slack's page, back to the app."""
    stack.slack.oauth_redirect_url = f"{web.url}/slack/oauth_redirect"
    with httpx.Client(timeout=30) as browser:
        page = browser.get(f"{web.url}/slack/install")
        assert page.status_code == 200
        # the state cookie is `Secure`: a browser on https sends it back; httpx on loopback http would not
        cookie = page.headers["set-cookie"].split(";")[0]
        found = re.search(r'href="([^"]+/oauth/v2/authorize\?[^"]+)"', page.text)
        assert found, page.text
        authorize = html.unescape(found.group(1))
        allowed = browser.get(f"{authorize}&{urlencode({'team': team_id, 'user': installer})}")
        assert allowed.status_code == 302, allowed.text
        return browser.get(allowed.headers["location"], headers={"Cookie": cookie})


def test_two_workspaces_each_with_its_own_token_and_people(web: WebProcess, stack: Stack, bot_store: Store) -> None:
    for team_id, installer in ((TEAM_A, ADMIN), (TEAM_B, B_ADMIN)):
        finished = install(web, stack, team_id, installer)
        assert finished.status_code == 200, finished.text
        token = stack.slack.installed_token(team_id)
        bot = bot_store.installations.find_bot(enterprise_id=None, team_id=team_id)
        assert token and bot is not None and bot.bot_token == token
        stored = bot_store.installations.find_installation(enterprise_id=None, team_id=team_id)
        assert stored is not None and stored.user_id == installer
    raw = b"".join(bot_store.redis.get(key) or b"" for key in bot_store.redis.scan_iter(
        match=bot_store.keys.installations_pattern(), _type="string"))
    assert raw and all(stack.slack.installed_token(t).encode() not in raw for t in (TEAM_A, TEAM_B))

    # Workspace B has its own people; workspace A keeps the environment's (ADMIN, LEADS).
    bot_store.team_settings.save(TEAM_B, TeamSettings(admins=[B_ADMIN], leads=[B_LEAD], updated_by=B_ADMIN))

    with SlackDriver(web.url, SIGNING_SECRET, team_id=TEAM_A, emulator=stack.slack) as in_a:
        story = Story(in_a, stack.slack, stack.dynamics.url)
        story.open_step1()
        story.enter_credentials()
        story.choose_fields()
        request = story.begin_sync()
    approval_id = next(e["value"] for b in request.history[0].blocks if b.get("type") == "actions"
                       for e in b["elements"] if e["action_id"] == ids.APPROVE_ACTION)
    assert stack.slack.wait_for("chat.postMessage", lambda c: c.args.get("channel") == request.channel).team == TEAM_A

    with SlackDriver(web.url, SIGNING_SECRET, team_id=TEAM_B, emulator=stack.slack) as in_b:
        # B's admin starts the flow in B: answered with B's token
        assert in_b.command(B_ADMIN).status == 200
        opened = stack.slack.wait_for("views.open", lambda c: c.team == TEAM_B)
        assert opened.ok
        # A's admin is nobody in B
        assert "Only Marketo admins" in in_b.command(ADMIN).text
        # B's lead cannot decide A's request, nor can A's lead from B
        for user in (B_LEAD, LEADS[0]):
            assert in_b.block_action(user, ids.APPROVE_ACTION, value=approval_id, channel=request.channel).status == 200
        told_b = wait_for(lambda: [m for m in stack.slack.ephemeral(B_LEAD) if "no longer exists" in m.text],
                          what="B's lead told the request does not exist")
        assert told_b
        wait_for(lambda: [m for m in stack.slack.ephemeral(LEADS[0]) if "team leads" in m.text.lower()],
                 what="A's lead refused in B")
    ephemerals = stack.slack.calls("chat.postEphemeral")
    assert {c.team for c in ephemerals if c.args.get("user") in (B_LEAD, LEADS[0])} == {TEAM_B}
    assert bot_store.get_approval(TEAM_A, approval_id).status == ApprovalStatus.pending
    assert bot_store.get_approval(TEAM_B, approval_id) is None
    assert {c.team for c in stack.slack.calls("auth.test")} >= {TEAM_A, TEAM_B}


def test_replayed_or_forged_state_installs_nothing(web: WebProcess, stack: Stack, bot_store: Store) -> None:
    stack.slack.oauth_redirect_url = f"{web.url}/slack/oauth_redirect"
    with httpx.Client(timeout=30) as browser:
        forged = browser.get(f"{web.url}/slack/oauth_redirect", params={"code": "whatever", "state": "x.y"})
        assert forged.status_code >= 400
    assert not stack.slack.calls("oauth.v2.access")
    assert bot_store.installations.find_bot(enterprise_id=None, team_id=TEAM_A) is None


def test_the_oauth_pages_are_not_served_in_single_token_mode(stack: Stack, key_prefix: str) -> None:
    process = WebProcess(stack.env(REDIS_URL=REDIS_URL, REDIS_KEY_PREFIX=key_prefix)).start()
    try:
        assert httpx.get(f"{process.url}/slack/install", timeout=10).status_code == 404
        assert httpx.get(f"{process.url}/slack/oauth_redirect", timeout=10).status_code == 404
    finally:
        process.stop()


def test_a_workspace_admin_sets_the_workspace_people_in_the_app_home(web: WebProcess, stack: Stack,
                                                                      bot_store: Store) -> None:
    install(web, stack, TEAM_B, B_ADMIN)
    stack.slack.set_user(B_ADMIN, UserProfile(name="b-admin", email="b-admin@example.com", is_admin=True))
    with SlackDriver(web.url, SIGNING_SECRET, team_id=TEAM_B, emulator=stack.slack) as in_b:
        # the App Home shows the deployment's defaults and an Edit button
        body = json.dumps(home_opened(B_ADMIN)).encode()
        assert in_b.raw(body, in_b.signed_headers(body, content_type="application/json")).status == 200
        home = wait_for(lambda: stack.slack.home(B_ADMIN), what="B's App Home")
        assert "Workspace settings" in json.dumps(home) and "deployment's defaults" in json.dumps(home)

        # someone who is neither a Slack admin of B nor a Marketo admin there is refused
        in_b.block_action("U0BNOBODY", ids.HOME_SETTINGS_ACTION, view=home)
        wait_for(lambda: [m for m in stack.slack.ephemeral("U0BNOBODY") + dm_posts(stack, "U0BNOBODY")
                          if "Only an admin or owner" in m.text], what="the refusal")

        in_b.block_action(B_ADMIN, ids.HOME_SETTINGS_ACTION, view=home)
        opened = stack.slack.wait_for("views.open", lambda c: c.team == TEAM_B)
        form = stack.slack.view(opened.response["view"]["id"])
        in_b.view_submission(B_ADMIN, form, {
            ids.SETTINGS_ADMINS_BLOCK: {ids.SETTINGS_ADMINS_ACTION: {"type": "multi_users_select",
                                                                     "selected_users": [B_ADMIN]}},
            ids.SETTINGS_LEADS_BLOCK: {ids.SETTINGS_LEADS_ACTION: {"type": "multi_users_select",
                                                                   "selected_users": [B_LEAD]}},
            ids.SETTINGS_APPROVAL_BLOCK: {ids.SETTINGS_APPROVAL_ACTION: {"type": "conversations_select",
                                                                         "selected_conversation": "C0BAPPROVE"}},
            ids.SETTINGS_NOTIFY_BLOCK: {ids.SETTINGS_NOTIFY_ACTION: {"type": "conversations_select",
                                                                     "selected_conversation": None}},
        })
        saved = wait_for(lambda: bot_store.team_settings.get(TEAM_B), what="B's settings saved")
        assert saved == TeamSettings(admins=[B_ADMIN], leads=[B_LEAD], approval_channel="C0BAPPROVE",
                                     updated_by=B_ADMIN)
        wait_for(lambda: "C0BAPPROVE" in json.dumps(stack.slack.home(B_ADMIN)), what="the App Home updated")
        assert bot_store.team_settings.get(TEAM_A) is None  # A keeps the deployment's defaults
        # the people now in charge in B are B's: the environment's admin is nobody there
        assert "Only Marketo admins" in in_b.command(ADMIN).text


def home_opened(user: str) -> dict:
    return {"type": "event_callback", "team_id": TEAM_B, "api_app_id": "A0001", "event_id": "Ev0001",
            "event_time": 1, "event": {"type": "app_home_opened", "user": user, "tab": "home", "channel": "D0001"}}


def dm_posts(stack: Stack, user: str) -> list:
    return stack.slack.messages(stack.slack.dm_channel(user))
