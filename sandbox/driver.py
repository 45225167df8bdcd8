"""Plays Slack's side of the web server: signed commands and interaction payloads over HTTP.

`SlackDriver(base_url, signing_secret)` posts to `{base_url}/slack/events` exactly what Slack
would (form-encoded commands, `payload=<json>` interactions, v0 signatures). Given a
`SlackEmulator`, trigger ids come from it (so `views.open` accepts them), user names come from its
profiles, and the app's answer to a view submission or close is applied to the emulator's modal
stack as Slack would apply it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx

from sandbox.slack import PostedMessage, SlackEmulator

FORM = "application/x-www-form-urlencoded"


@dataclass(frozen=True)
class DriverResponse:
    status: int
    json: Any
    text: str
    headers: httpx.Headers
    elapsed: float


def _find_element(blocks: list[dict[str, Any]], action_id: str) -> tuple[str | None, dict[str, Any] | None]:
    """The block_id and element of `action_id` in a list of blocks, if it is there."""
    for block in blocks:
        candidates = [block.get("accessory"), block.get("element"), *(block.get("elements") or [])]
        for element in candidates:
            if isinstance(element, dict) and element.get("action_id") == action_id:
                return block.get("block_id"), element
    return None, None


class SlackDriver:
    """Signed requests to the bot's `/slack/events`. Use as a context manager or call `close()`."""

    def __init__(
        self,
        base_url: str,
        signing_secret: str,
        team_id: str = "T0001",
        emulator: SlackEmulator | None = None,
        *,
        team_domain: str = "connect-dynamics",
        api_app_id: str = "A0001",
        verification_token: str = "legacy-verification-token",
        path: str = "/slack/events",
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.url = base_url.rstrip("/") + path
        self.signing_secret = signing_secret
        self.team_id = team_id
        self.team_domain = team_domain
        self.api_app_id = api_app_id
        self.verification_token = verification_token
        self.emulator = emulator
        self._http = httpx.Client(timeout=timeout, transport=transport)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> SlackDriver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------ signing and sending

    def sign(self, body: bytes, timestamp: int | str) -> str:
        """`v0=` + hex HMAC-SHA256 of `v0:{timestamp}:{body}` keyed by the signing secret."""
        base = b"v0:" + str(timestamp).encode() + b":" + body
        return "v0=" + hmac.new(self.signing_secret.encode(), base, hashlib.sha256).hexdigest()

    def signed_headers(
        self, body: bytes, timestamp: int | None = None, content_type: str = FORM
    ) -> dict[str, str]:
        ts = int(time.time()) if timestamp is None else timestamp
        return {
            "Content-Type": content_type,
            "X-Slack-Request-Timestamp": str(ts),
            "X-Slack-Signature": self.sign(body, ts),
        }

    def raw(self, body: bytes, headers: dict[str, str] | None = None) -> DriverResponse:
        """POST `body` with exactly these headers (none added): for bad-input tests."""
        started = time.monotonic()
        response = self._http.post(self.url, content=body, headers=headers or {})
        elapsed = time.monotonic() - started
        try:
            parsed = response.json() if response.content else None
        except ValueError:
            parsed = None
        return DriverResponse(response.status_code, parsed, response.text, response.headers, elapsed)

    def send(self, body: bytes) -> DriverResponse:
        return self.raw(body, self.signed_headers(body))

    def send_payload(self, payload: dict[str, Any]) -> DriverResponse:
        """An interaction payload as Slack posts it: `payload=<url-quoted JSON>`."""
        return self.send(urlencode({"payload": json.dumps(payload)}).encode())

    # ------------------------------------------------------------ payload parts

    def _trigger_id(self, user: str) -> str:
        if self.emulator is not None:
            return self.emulator.new_trigger_id(user)
        return f"{int(time.time())}.{secrets.randbelow(10**10):010d}.{secrets.token_hex(16)}"

    def _username(self, user: str) -> str:
        return self.emulator.user_profile(user).name if self.emulator is not None else f"user-{user.lower()}"

    def _response_url(self, kind: str, user: str, channel: str) -> str:
        """On the emulator when there is one, so a `respond()` stays on loopback and is recorded."""
        if self.emulator is not None:
            return self.emulator.new_response_url(user, channel)
        return f"https://hooks.slack.com/{kind}/{self.team_id}/{secrets.randbelow(10**12)}/{secrets.token_hex(12)}"

    def _base(self, kind: str, user: str) -> dict[str, Any]:
        name = self._username(user)
        return {
            "type": kind,
            "team": {"id": self.team_id, "domain": self.team_domain},
            "user": {"id": user, "username": name, "name": name, "team_id": self.team_id},
            "api_app_id": self.api_app_id,
            "token": self.verification_token,
            "is_enterprise_install": False,
            "enterprise": None,
        }

    # ------------------------------------------------------------ what users do

    def command(
        self, user: str, text: str = "", command: str = "/connect-dynamics", channel: str = "C0001"
    ) -> DriverResponse:
        """A slash command, form-encoded as Slack sends it."""
        fields = {
            "token": self.verification_token,
            "team_id": self.team_id,
            "team_domain": self.team_domain,
            "channel_id": channel,
            "channel_name": "directmessage" if channel.startswith("D") else "general",
            "user_id": user,
            "user_name": self._username(user),
            "command": command,
            "text": text,
            "api_app_id": self.api_app_id,
            "is_enterprise_install": "false",
            "response_url": self._response_url("commands", user, channel),
            "trigger_id": self._trigger_id(user),
        }
        return self.send(urlencode(fields).encode())

    def block_action(
        self,
        user: str,
        action_id: str,
        value: str | None = None,
        view: dict[str, Any] | None = None,
        message: dict[str, Any] | PostedMessage | None = None,
        channel: str | None = None,
        block_id: str | None = None,
        selected_options: list[dict[str, Any]] | None = None,
        *,
        action_type: str | None = None,
    ) -> DriverResponse:
        """A press or a selection in a modal (`view`) or in a message (`message`, `channel`).

        The block_id and the action's type are read from the view's or message's blocks when the
        action is there; otherwise a button (or a multi_static_select with `selected_options`).
        """
        if isinstance(message, PostedMessage):
            channel = channel or message.channel
            message = message.to_payload()
        blocks = (view or message or {}).get("blocks") or []
        found_block_id, element = _find_element(blocks, action_id)
        kind = action_type or (element or {}).get("type") or (
            "multi_static_select" if selected_options is not None else "button"
        )
        action: dict[str, Any] = {
            "action_id": action_id,
            "block_id": block_id or found_block_id or secrets.token_hex(3),
            "type": kind,
            "action_ts": f"{time.time():.6f}",
        }
        if element is not None and "text" in element:
            action["text"] = element["text"]
        if value is not None:
            action["value"] = value
        if selected_options is not None:
            action["selected_options"] = selected_options
        payload = self._base("block_actions", user)
        payload["trigger_id"] = self._trigger_id(user)
        payload["actions"] = [action]
        if view is not None:
            payload["container"] = {"type": "view", "view_id": view["id"]}
            payload["view"] = view
        else:
            channel = channel or "C0001"
            payload["container"] = {
                "type": "message", "message_ts": (message or {}).get("ts", f"{time.time():.6f}"),
                "channel_id": channel, "is_ephemeral": message is None,
            }
            payload["channel"] = {"id": channel, "name": "general"}
            if message is not None:
                payload["message"] = message
            payload["state"] = {"values": {}}
            payload["response_url"] = self._response_url("actions", user, channel)
        return self.send_payload(payload)

    def view_submission(
        self, user: str, view: dict[str, Any], values: dict[str, dict[str, dict[str, Any]]]
    ) -> DriverResponse:
        """Submit `view` (as the emulator holds it) with `values` as its `state.values`.

        With an emulator, the app's answer (close, update, push, clear, errors) is applied to it.
        """
        submitted = {**view, "state": {"values": values}}
        payload = self._base("view_submission", user)
        payload.update(trigger_id=self._trigger_id(user), view=submitted, response_urls=[])
        response = self.send_payload(payload)
        if self.emulator is not None and response.status == 200:
            self.emulator.submit_view(view["id"], response.json if isinstance(response.json, dict) else None)
        return response

    def view_closed(self, user: str, view: dict[str, Any], *, is_cleared: bool = False) -> DriverResponse:
        """The user closed the modal (only sent to the app when the view has notify_on_close)."""
        payload = self._base("view_closed", user)
        payload.update(view=view, is_cleared=is_cleared)
        response = self.send_payload(payload)
        if self.emulator is not None:
            self.emulator.close_view(view["id"], clear=is_cleared)
        return response

    def block_suggestion(
        self,
        user: str,
        action_id: str,
        value: str,
        view: dict[str, Any] | None = None,
        block_id: str | None = None,
    ) -> DriverResponse:
        """What an external select sends as the user types `value` (answered with options)."""
        found_block_id, _ = _find_element((view or {}).get("blocks") or [], action_id)
        payload = self._base("block_suggestion", user)
        payload.update(
            action_id=action_id,
            block_id=block_id or found_block_id or secrets.token_hex(3),
            value=value,
            container={"type": "view", "view_id": view["id"]} if view else {"type": "message"},
        )
        if view is not None:
            payload["view"] = view
        return self.send_payload(payload)
