"""The web front over real loopback HTTP: bodies are capped while streaming, bad headers are 401s."""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Iterator
from urllib.parse import urlencode

import httpx
import pytest

from bot.app import build_app
from bot.config import Settings
from bot.container import Container
from bot.web import MAX_BODY_BYTES, create_web_app
from sandbox.server import ServerThread
from sandbox.slack import SlackEmulator
from tests.conftest import REDIS_URL

SECRET = "web-front-secret"
CHUNK = b"x" * 65536
OFFERED = 256 * 1024 * 1024  # what the client would send: 256 times the cap


@pytest.fixture
def web(key_prefix: str, encryption_key: str) -> Iterator[str]:
    with SlackEmulator() as slack:
        settings = Settings(SLACK_SIGNING_SECRET=SECRET, REDIS_URL=REDIS_URL, REDIS_KEY_PREFIX=key_prefix,
                            ENCRYPTION_KEY=encryption_key, SLACK_BOT_TOKEN=slack.bot_token,
                            SLACK_API_URL=slack.api_url)
        container = Container(settings)
        server = ServerThread(create_web_app(build_app(container), container)).start()
        yield f"{server.url}/slack/events"
        server.stop()


class CountingBody:
    """A request body produced on demand, counting how much of it the client was asked for."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.consumed = 0

    def __iter__(self) -> Iterator[bytes]:
        while self.consumed < self.total:
            self.consumed += len(CHUNK)
            yield CHUNK


def _post(url: str, body: CountingBody, headers: dict[str, str]) -> httpx.Response:
    with httpx.Client(timeout=30) as client:
        return client.post(url, content=body, headers=headers)


def test_a_declared_oversized_body_is_refused_before_it_is_read(web: str) -> None:
    body = CountingBody(OFFERED)
    response = _post(web, body, {"Content-Length": str(OFFERED), "Content-Type": "application/x-www-form-urlencoded"})
    assert response.status_code == 413
    assert body.consumed < OFFERED // 4, body.consumed


def test_a_chunked_oversized_body_is_cut_off_at_the_cap(web: str) -> None:
    body = CountingBody(OFFERED)
    response = _post(web, body, {"Content-Type": "application/x-www-form-urlencoded"})  # no length: chunked
    assert response.status_code == 413
    assert body.consumed < OFFERED // 4, body.consumed


def _signed(body: bytes) -> dict[str, str]:
    ts = str(int(time.time()))
    signature = hmac.new(SECRET.encode(), b"v0:" + ts.encode() + b":" + body, hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": "v0=" + signature,
            "Content-Type": "application/x-www-form-urlencoded"}


def test_a_signed_request_under_the_cap_still_reaches_the_bot(web: str) -> None:
    body = urlencode({"command": "/connect-dynamics", "text": "help", "team_id": "T1", "user_id": "U1",
                      "padding": "p" * (MAX_BODY_BYTES // 2)}).encode()
    response = httpx.post(web, content=iter([body[:1000], body[1000:]]), headers=_signed(body), timeout=30)
    assert response.status_code == 200 and "/connect-dynamics" in response.text


@pytest.mark.parametrize(("name", "value"), [
    ("X-Slack-Signature", b"v0=" + "é".encode() * 64),
    ("X-Slack-Signature", b"v0=" + b"\xff" * 64),
    ("X-Slack-Signature", b"v0=deadbeef"),
    ("X-Slack-Request-Timestamp", "١٧٠٠٠٠٠٠٠٠".encode()),
    ("X-Slack-Request-Timestamp", b"-1"),
])
def test_a_malformed_signature_header_is_401(web: str, name: str, value: bytes) -> None:
    body = b"command=/connect-dynamics&team_id=T1&user_id=U1"
    headers: dict[str, str | bytes] = {**_signed(body), name: value}
    response = httpx.post(web, content=body, headers=headers, timeout=10)
    assert response.status_code == 401


def test_bolt_routes_the_body_the_guard_parsed(web: str) -> None:
    """Bolt's own parser reads any form whose text contains "payload" as an empty body (no listener
    matches: a 404); the guard's parse, handed to Bolt, routes it as the command it is."""
    body = urlencode({"command": "/connect-dynamics", "text": "help payload", "team_id": "T1",
                      "user_id": "U1"}).encode()
    response = httpx.post(web, content=body, headers=_signed(body), timeout=30)
    assert response.status_code == 200 and "/connect-dynamics" in response.text
