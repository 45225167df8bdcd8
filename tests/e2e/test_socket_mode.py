"""`connect-dynamics socket` as a real subprocess against the Slack emulator's Socket Mode: it opens a
connection with the app token, acks each envelope and answers like the HTTP server does."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from bot.views import ids
from sandbox.polling import wait_for
from sandbox.stack import ADMIN, LEADS, Stack
from tests.support.processes import BotProcess

CHANNEL = "C0001"


@pytest.fixture
def stack_options() -> dict:
    return {"leads": 5, "contacts": 5, "accounts": 5}


@pytest.fixture
def socket_process(bot_env: dict[str, str], stack: Stack, request: pytest.FixtureRequest) -> Iterator[BotProcess]:
    process = BotProcess("socket", bot_env).start()
    try:
        stack.slack.socket_connected(timeout=30)
    except TimeoutError:
        process.stop()
        raise
    yield process
    if getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed:
        print(f"--- socket log ---\n{process.output()}")
    process.stop()


def _command(stack: Stack, user: str, text: str = "") -> dict[str, Any]:
    """The slash-command payload as Socket Mode delivers it (the same fields as the HTTP form)."""
    return {
        "token": "legacy-verification-token", "team_id": stack.slack.team_id, "team_domain": "connect-dynamics",
        "channel_id": CHANNEL, "channel_name": "general", "user_id": user, "user_name": f"user-{user.lower()}",
        "command": "/connect-dynamics", "text": text, "api_app_id": stack.slack.app_id,
        "is_enterprise_install": "false", "response_url": stack.slack.new_response_url(user, CHANNEL),
        "trigger_id": stack.slack.new_trigger_id(user),
    }


def _labels(view: dict[str, Any]) -> set[str]:
    return {block["label"]["text"] for block in view["blocks"] if block["type"] == "input"}


def test_slash_command_over_socket_mode_opens_step1(socket_process: BotProcess, stack: Stack) -> None:
    assert stack.slack.calls("apps.connections.open")[0].ok, "the app token opened the connection"

    started = time.monotonic()
    envelope_id = stack.slack.socket_send("slash_commands", _command(stack, ADMIN))
    ack = stack.slack.socket_ack(envelope_id, timeout=3)
    assert time.monotonic() - started < 3.0
    assert ack["envelope_id"] == envelope_id
    call = stack.slack.wait_for("views.open", timeout=10)
    assert call.ok, call.error
    view = call.args["view"]
    view = json.loads(view) if isinstance(view, str) else view
    assert view["callback_id"] == ids.CREDENTIALS_CALLBACK
    assert _labels(view) == {"Username", "Password", "Dynamics URL", "Client ID", "Client Secret"}

    refused = stack.slack.socket_send("slash_commands", _command(stack, LEADS[0]))
    assert "admin" in json.dumps(stack.slack.socket_ack(refused, timeout=3).get("payload") or {}).lower()
    assert len(stack.slack.calls("views.open")) == 1, "a non-admin gets no modal"


def test_stale_button_over_socket_mode_is_acked_and_explained(socket_process: BotProcess, stack: Stack) -> None:
    payload = {
        "type": "block_actions", "team": {"id": stack.slack.team_id}, "user": {"id": ADMIN},
        "api_app_id": stack.slack.app_id, "trigger_id": stack.slack.new_trigger_id(ADMIN),
        "actions": [{"action_id": "cd_from_an_older_version", "block_id": "b1", "type": "button", "value": "x",
                     "action_ts": f"{time.time():.6f}"}],
        "container": {"type": "message", "message_ts": "1.000001", "channel_id": CHANNEL, "is_ephemeral": False},
        "channel": {"id": CHANNEL, "name": "general"},
        "response_url": stack.slack.new_response_url(ADMIN, CHANNEL),
    }
    envelope_id = stack.slack.socket_send("interactive", payload)
    assert stack.slack.socket_ack(envelope_id, timeout=3)["envelope_id"] == envelope_id
    wait_for(lambda: stack.slack.ephemeral(ADMIN), what="an ephemeral 'no longer valid'")
    assert "no longer valid" in stack.slack.ephemeral(ADMIN)[-1].text
