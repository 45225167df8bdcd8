"""The driver's requests are signed as Slack signs them and parse in Bolt as Slack payloads do.

Requests go through an httpx MockTransport straight into `App.dispatch`, so Bolt's own signature
check, payload parsing and listener matching judge them, with no network.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
from slack_bolt import App, BoltRequest
from slack_bolt.authorization import AuthorizeResult
from slack_sdk.signature import SignatureVerifier

from sandbox.driver import SlackDriver
from sandbox.slack import PostedMessage

SECRET = "unit-test-signing-secret"


def _authorize(**_: Any) -> AuthorizeResult:
    """A fixed installation, so Bolt needs no auth.test call."""
    return AuthorizeResult(enterprise_id=None, team_id="T0001", bot_token="xoxb-unit", bot_user_id="UBOT", bot_id="B1")


class Captured:
    """The Bolt app behind the transport and what its listeners saw."""

    def __init__(self) -> None:
        self.app = App(signing_secret=SECRET, authorize=_authorize)
        self.requests: list[httpx.Request] = []
        self.bodies: dict[str, dict[str, Any]] = {}

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        try:
            body = request.content.decode()
        except UnicodeDecodeError:
            return httpx.Response(400)
        bolt = self.app.dispatch(BoltRequest(body=body, headers=dict(request.headers)))
        return httpx.Response(bolt.status, content=bolt.body.encode(), headers=bolt.first_headers_without_set_cookie())


@pytest.fixture
def bolt() -> Captured:
    return Captured()


@pytest.fixture
def driver(bolt: Captured) -> Iterator[SlackDriver]:
    with SlackDriver("http://bot.test", SECRET, transport=httpx.MockTransport(bolt.handle)) as slack:
        yield slack


def _modal() -> dict[str, Any]:
    return {
        "id": "V123", "hash": "1.abc", "type": "modal", "callback_id": "creds", "private_metadata": "flow-1",
        "title": {"type": "plain_text", "text": "Step 1"},
        "blocks": [
            {"type": "input", "block_id": "user_block",
             "element": {"type": "plain_text_input", "action_id": "username"},
             "label": {"type": "plain_text", "text": "Username"}},
            {"type": "actions", "block_id": "nav",
             "elements": [{"type": "button", "action_id": "continue", "text": {"type": "plain_text", "text": "Go"}}]},
            {"type": "input", "block_id": "lead_fields",
             "element": {"type": "multi_external_select", "action_id": "pick_lead"},
             "label": {"type": "plain_text", "text": "Lead"}},
        ],
    }


def test_signature_verifies_with_slack_sdk(driver: SlackDriver, bolt: Captured) -> None:
    bolt.app.command("/connect-dynamics")(lambda ack: ack())
    driver.command("U100", "status")
    request = bolt.requests[-1]
    verifier = SignatureVerifier(SECRET)
    headers = dict(request.headers)
    assert verifier.is_valid_request(request.content, headers)
    assert not verifier.is_valid_request(request.content + b"x", headers)
    assert not SignatureVerifier("other-secret").is_valid_request(request.content, headers)
    assert driver.sign(b"body", 1700000000) == verifier.generate_signature(timestamp="1700000000", body=b"body")


def test_command_is_form_encoded_with_a_fresh_trigger(driver: SlackDriver, bolt: Captured) -> None:
    seen: list[dict[str, Any]] = []

    def handler(ack: Any, command: dict[str, Any]) -> None:
        seen.append(command)
        ack("hello")

    bolt.app.command("/connect-dynamics")(handler)
    response = driver.command("U100", "status", channel="C0042")
    assert response.status == 200
    assert response.text == "hello"
    assert response.elapsed >= 0
    assert bolt.requests[-1].headers["content-type"] == "application/x-www-form-urlencoded"
    command = seen[0]
    assert (command["user_id"], command["user_name"], command["text"]) == ("U100", "user-u100", "status")
    assert (command["channel_id"], command["team_id"], command["command"]) == ("C0042", "T0001", "/connect-dynamics")
    assert command["response_url"].startswith("https://hooks.slack.com/commands/")
    driver.command("U100")
    assert parse_qs(bolt.requests[-1].content.decode())["trigger_id"] != [command["trigger_id"]]


def test_block_action_in_a_view_finds_its_block(driver: SlackDriver, bolt: Captured) -> None:
    seen: list[dict[str, Any]] = []

    def handler(ack: Any, body: dict[str, Any]) -> None:
        seen.append(body)
        ack()

    bolt.app.action("continue")(handler)
    assert driver.block_action("U100", "continue", view=_modal()).status == 200
    body = seen[0]
    assert body["type"] == "block_actions"
    assert body["container"] == {"type": "view", "view_id": "V123"}
    assert body["view"]["private_metadata"] == "flow-1"
    assert body["user"] == {"id": "U100", "username": "user-u100", "name": "user-u100", "team_id": "T0001"}
    assert body["team"] == {"id": "T0001", "domain": "connect-dynamics"}
    assert body["trigger_id"] and body["api_app_id"] == "A0001" and body["token"]
    action = body["actions"][0]
    assert (action["block_id"], action["type"], action["text"]["text"]) == ("nav", "button", "Go")
    assert float(action["action_ts"]) > 0


def test_block_action_on_a_posted_message(driver: SlackDriver, bolt: Captured) -> None:
    seen: list[dict[str, Any]] = []

    def handler(ack: Any, body: dict[str, Any], action: dict[str, Any]) -> None:
        seen.append(body)
        ack()

    bolt.app.action("approve")(handler)
    button = {"type": "button", "action_id": "approve", "value": "req-7", "text": {"type": "plain_text", "text": "Approve"}}
    message = PostedMessage("C0999", "1700000000.000100", "Approve?", [
        {"type": "actions", "block_id": "decide", "elements": [button]}], None, "UBOT")
    assert driver.block_action("U100", "approve", value="req-7", message=message).status == 200
    body = seen[0]
    assert body["container"]["message_ts"] == "1700000000.000100"
    assert body["container"]["channel_id"] == body["channel"]["id"] == "C0999"
    assert body["message"]["text"] == "Approve?"
    assert body["actions"][0]["value"] == "req-7" and body["actions"][0]["block_id"] == "decide"
    assert body["response_url"].startswith("https://hooks.slack.com/actions/")


def test_selected_options_make_a_multi_select_action(driver: SlackDriver, bolt: Captured) -> None:
    seen: list[dict[str, Any]] = []
    bolt.app.action("pick")(lambda ack, action: (seen.append(action), ack()))
    options = [{"text": {"type": "plain_text", "text": "Email"}, "value": "emailaddress1"}]
    driver.block_action("U100", "pick", selected_options=options, channel="C1")
    assert seen[0]["type"] == "multi_static_select"
    assert seen[0]["selected_options"] == options


def test_view_submission_carries_state_and_returns_the_ack(driver: SlackDriver, bolt: Captured) -> None:
    seen: list[dict[str, Any]] = []

    def handler(ack: Any, view: dict[str, Any]) -> None:
        seen.append(view)
        ack(response_action="errors", errors={"user_block": "Use user@domain.com"})

    bolt.app.view("creds")(handler)
    values = {"user_block": {"username": {"type": "plain_text_input", "value": "DOMAIN\\ada"}}}
    response = driver.view_submission("U100", _modal(), values)
    assert response.status == 200
    assert response.json == {"response_action": "errors", "errors": {"user_block": "Use user@domain.com"}}
    view = seen[0]
    assert view["state"]["values"] == values
    assert (view["id"], view["hash"], view["private_metadata"]) == ("V123", "1.abc", "flow-1")


def test_block_suggestion_returns_options(driver: SlackDriver, bolt: Captured) -> None:
    seen: list[dict[str, Any]] = []

    def handler(ack: Any, body: dict[str, Any]) -> None:
        seen.append(body)
        ack(options=[{"text": {"type": "plain_text", "text": body["value"]}, "value": "v"}])

    bolt.app.options("pick_lead")(handler)
    response = driver.block_suggestion("U100", "pick_lead", "ema", view=_modal())
    assert response.status == 200
    assert response.json["options"][0]["text"]["text"] == "ema"
    assert seen[0]["type"] == "block_suggestion"
    assert seen[0]["block_id"] == "lead_fields"
    assert seen[0]["view"]["id"] == "V123"


def test_view_closed_reaches_the_listener(driver: SlackDriver, bolt: Captured) -> None:
    seen: list[dict[str, Any]] = []
    bolt.app.view_closed("creds")(lambda ack, body: (seen.append(body), ack()))
    assert driver.view_closed("U100", _modal(), is_cleared=True).status == 200
    assert seen[0]["type"] == "view_closed" and seen[0]["is_cleared"] is True


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda d, body: d.signed_headers(body, timestamp=int(time.time()) - 600), id="stale"),
        pytest.param(lambda d, body: {**d.signed_headers(body), "X-Slack-Signature": "v0=" + "0" * 64}, id="bad-sig"),
        pytest.param(lambda d, body: {"Content-Type": "application/x-www-form-urlencoded"}, id="unsigned"),
    ],
)
def test_bad_requests_are_refused(driver: SlackDriver, bolt: Captured, make: Any) -> None:
    called: list[str] = []
    bolt.app.command("/connect-dynamics")(lambda ack: (called.append("x"), ack()))
    body = b"command=%2Fconnect-dynamics&user_id=U100&team_id=T0001&text="
    response = driver.raw(body, make(driver, body))
    assert response.status == 401
    assert called == []


def test_raw_sends_bytes_unchanged(driver: SlackDriver, bolt: Captured) -> None:
    garbage = bytes(range(256))
    driver.raw(garbage, driver.signed_headers(garbage))
    sent = bolt.requests[-1]
    assert sent.content == garbage
    expected = hmac.new(SECRET.encode(), b"v0:" + sent.headers["x-slack-request-timestamp"].encode() + b":" + garbage,
                        hashlib.sha256).hexdigest()
    assert sent.headers["x-slack-signature"] == "v0=" + expected


def test_payload_is_url_quoted_json(driver: SlackDriver, bolt: Captured) -> None:
    bolt.app.action("continue")(lambda ack: ack())
    driver.block_action("U100", "continue", view=_modal())
    form = parse_qs(bolt.requests[-1].content.decode())
    assert set(form) == {"payload"}
    assert json.loads(form["payload"][0])["actions"][0]["action_id"] == "continue"
