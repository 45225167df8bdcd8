"""The manifest asks for exactly what the code uses: commands, scopes, events, interactivity."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from handlers.commands import SUBCOMMANDS

ROOT = Path(__file__).resolve().parents[2]
MANIFEST = yaml.safe_load((ROOT / "manifest.yml").read_text())

# Web API methods the bot may call, and the bot scope each one needs (None: no extra scope).
METHOD_SCOPES = {
    "chat_postMessage": "chat:write",
    "chat_update": "chat:write",
    "chat_postEphemeral": "chat:write",
    "conversations_open": "im:write",
    "files_upload_v2": "files:write",
    "users_info": "users:read",
    "users_lookupByEmail": "users:read.email",
    "views_open": None,
    "views_push": None,
    "views_update": None,
    "views_publish": None,
}


def _source() -> str:
    files = [*ROOT.joinpath("bot").rglob("*.py"), *ROOT.joinpath("handlers").rglob("*.py")]
    return "\n".join(p.read_text() for p in files)


def test_scopes_are_exactly_those_the_code_needs() -> None:
    source = _source()
    used = {m for m in METHOD_SCOPES if re.search(rf"\.{m}\b", source)}
    needed = {"commands"} | {METHOD_SCOPES[m] for m in used if METHOD_SCOPES[m]}
    assert set(MANIFEST["oauth_config"]["scopes"]["bot"]) == needed


def test_the_one_command_and_its_usage_hint() -> None:
    commands = MANIFEST["features"]["slash_commands"]
    assert [c["command"] for c in commands] == ["/connect-dynamics"]
    hint = commands[0]["usage_hint"]
    for name in SUBCOMMANDS:
        if name and name != "connect":
            assert name in hint, name


def test_events_and_interactivity_match_the_listeners() -> None:
    router = (ROOT / "handlers" / "router.py").read_text()
    events = set(re.findall(r'app\.event\("(\w+)"\)', router))
    if "enable_token_revocation_listeners()" in (ROOT / "bot" / "app.py").read_text():
        events |= {"app_uninstalled", "tokens_revoked"}
    assert set(MANIFEST["settings"]["event_subscriptions"]["bot_events"]) == events
    interactivity = MANIFEST["settings"]["interactivity"]
    assert interactivity["is_enabled"] is True
    assert interactivity["message_menu_options_url"].endswith("/slack/events")  # external selects (Step 2)
    assert MANIFEST["features"]["app_home"]["home_tab_enabled"] is True


def test_oauth_redirect_and_the_scopes_the_install_asks_for() -> None:
    from bot.app import BOT_SCOPES, REDIRECT_PATH

    assert [url.endswith(REDIRECT_PATH) for url in MANIFEST["oauth_config"]["redirect_urls"]] == [True]
    assert set(BOT_SCOPES) == set(MANIFEST["oauth_config"]["scopes"]["bot"])
