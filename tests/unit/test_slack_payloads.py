"""The request guard: signature and freshness first, then the payload's shape."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from urllib.parse import urlencode

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.slack_payloads import (
    ActionPayload,
    Rejected,
    SlashCommand,
    SuggestionPayload,
    ViewPayload,
    guard_request,
)

SECRET = "s3cret"
FORM = "application/x-www-form-urlencoded"


def _headers(body: bytes, timestamp: int | None = None, secret: str = SECRET) -> dict[str, str]:
    ts = str(timestamp if timestamp is not None else int(time.time()))
    signature = "v0=" + hmac.new(secret.encode(), b"v0:" + ts.encode() + b":" + body, hashlib.sha256).hexdigest()
    return {"x-slack-request-timestamp": ts, "x-slack-signature": signature, "content-type": FORM}


def _payload(data: dict) -> bytes:
    return urlencode({"payload": json.dumps(data)}).encode()


BASE = {"team": {"id": "T1"}, "user": {"id": "U1"}}


def test_command_parses() -> None:
    body = urlencode({"command": "/connect-dynamics", "team_id": "T1", "user_id": "U1", "text": "status"}).encode()
    guarded = guard_request(body, _headers(body), SECRET)
    assert isinstance(guarded.payload, SlashCommand) and guarded.payload.text == "status"
    assert guarded.body == {"command": "/connect-dynamics", "team_id": "T1", "user_id": "U1", "text": "status"}


@pytest.mark.parametrize(("data", "model"), [
    ({**BASE, "type": "block_actions", "actions": [{"action_id": "a"}]}, ActionPayload),
    ({**BASE, "type": "view_submission", "view": {"id": "V1", "type": "modal", "callback_id": "c"}}, ViewPayload),
    ({**BASE, "type": "block_suggestion", "action_id": "a", "value": "x"}, SuggestionPayload),
])
def test_interactive_payloads_parse(data: dict, model: type) -> None:
    body = _payload(data)
    guarded = guard_request(body, _headers(body), SECRET)
    assert isinstance(guarded.payload, model) and guarded.body == data  # Bolt gets the dict it would have parsed


def test_view_state_values_are_read_whatever_the_element() -> None:
    body = _payload({**BASE, "type": "view_submission", "view": {"id": "V1", "type": "modal", "state": {"values": {
        "b1": {"a1": {"type": "plain_text_input", "value": "hello"}},
        "b2": {"a2": {"type": "multi_external_select", "selected_options": [{"value": "x"}, {"value": "y"}]}},
    }}}})
    view = guard_request(body, _headers(body), SECRET).payload.view
    assert view.value("b1", "a1") == "hello"
    assert view.value("b2", "a2") == ["x", "y"]
    assert view.value("missing", "a") is None


@pytest.mark.parametrize("headers_for", [
    lambda body: {},
    lambda body: _headers(body, secret="other"),
    lambda body: _headers(body, timestamp=int(time.time()) - 301),
    lambda body: {**_headers(body), "x-slack-request-timestamp": "soon"},
])
def test_unsigned_wrong_or_stale_is_401(headers_for) -> None:  # noqa: ANN001
    body = urlencode({"command": "/x", "team_id": "T1", "user_id": "U1"}).encode()
    with pytest.raises(Rejected) as raised:
        guard_request(body, headers_for(body), SECRET)
    assert raised.value.status == 401


@pytest.mark.parametrize("body", [
    b"payload=null", b"payload=[]", b"payload=%7B%7D", _payload({**BASE, "type": "view_submission", "view": None}),
    _payload({**BASE, "type": "view_submission", "view": {"id": "V1", "callback_id": "c"}}),
    _payload({**BASE, "type": "view_submission", "view": {"id": "V1", "type": "modal", "state": {"values": {"b": "x"}}}}),
    _payload({**BASE, "type": "block_actions", "actions": []}), b"\xff\xfe", b"", b"command=/x",
    b"payload=" + b"%5B" * 5000,
])
def test_malformed_signed_bodies_are_400(body: bytes) -> None:
    with pytest.raises(Rejected) as raised:
        guard_request(body, _headers(body), SECRET)
    assert raised.value.status == 400


@pytest.mark.parametrize("body", [b"[]", b"null", b"{", b"[" * 100_000, b'{"type": "reaction_added"}'])
def test_malformed_signed_json_bodies_are_400(body: bytes) -> None:
    with pytest.raises(Rejected) as raised:
        guard_request(body, {**_headers(body), "content-type": "application/json"}, SECRET)
    assert raised.value.status == 400


def test_an_event_is_handed_on_as_parsed() -> None:
    data = {"type": "event_callback", "team_id": "T1", "event": {"type": "app_home_opened", "user": "U1"}}
    body = json.dumps(data).encode()
    guarded = guard_request(body, {**_headers(body), "content-type": "application/json"}, SECRET)
    assert guarded.body == data and guarded.payload.event == data["event"]


@given(st.binary(max_size=300))
def test_any_signed_bytes_give_a_model_or_a_4xx(body: bytes) -> None:
    try:
        guard_request(body, _headers(body), SECRET)
    except Rejected as rejected:
        assert 400 <= rejected.status < 500


def _with(body: bytes, name: str, value: str) -> dict[str, str]:
    return {**_headers(body), f"x-slack-{name}": value}


NOW = str(int(time.time()))
GOOD_SIGNATURE = "v0=" + "0" * 64


@pytest.mark.parametrize(("name", "value"), [
    ("signature", "v0=" + "é" * 64), ("signature", "v0=é"), ("signature", "v0=abc"), ("signature", "v0=" + "g" * 64),
    ("signature", "v1=" + "0" * 64), ("signature", GOOD_SIGNATURE + "0"), ("signature", " " + GOOD_SIGNATURE),
    ("request-timestamp", "１２３"), ("request-timestamp", "+" + NOW), ("request-timestamp", f" {NOW} "),
    ("request-timestamp", "1_7" + NOW[2:]), ("request-timestamp", "9" * 5000), ("request-timestamp", "é"),
])
def test_any_malformed_signature_or_timestamp_is_401(name: str, value: str) -> None:
    """Non-ASCII, wrong length, not hex, not a plain number: a 401, never an exception of another kind."""
    body = urlencode({"command": "/x", "team_id": "T1", "user_id": "U1"}).encode()
    with pytest.raises(Rejected) as raised:
        guard_request(body, _with(body, name, value), SECRET)
    assert raised.value.status == 401


@given(st.text(max_size=80), st.text(max_size=20))
def test_any_header_text_gives_a_401(signature: str, timestamp: str) -> None:
    body = b"command=/x&team_id=T1&user_id=U1"
    with pytest.raises(Rejected) as raised:
        guard_request(body, {"x-slack-signature": signature, "x-slack-request-timestamp": timestamp}, SECRET)
    assert raised.value.status == 401
