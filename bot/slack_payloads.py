"""Pydantic models of the Slack payloads the bot parses, and the request guard built on them.

Bolt's adapters (and slack_sdk's SignatureVerifier) decode the body as UTF-8 before the
signature is checked, so a garbage body gives a 500. The HMAC here is computed over the raw bytes. `guard_request` runs first: signature, freshness, then shape; anything that fails
gets a 4xx and reaches nothing else. What it parsed is handed on (`Guarded`), so the body is
parsed once per request: Bolt gets the dict, the listeners the model (`GUARDED_PAYLOAD`).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
from dataclasses import dataclass
from typing import Any, Literal, Protocol
from urllib.parse import parse_qs

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

MAX_REQUEST_AGE_SECONDS = 300
GUARDED_PAYLOAD = "guarded_payload"
"""The key of the guard's model of the request in Bolt's context (absent in Socket Mode)."""
# Checked before use: a non-ASCII signature would make `hmac.compare_digest` raise (a 500), and
# `int()` takes signs, spaces, underscores and non-ASCII digits.
_TIMESTAMP = re.compile(r"[0-9]{1,12}")
_SIGNATURE = re.compile(r"v0=[0-9a-f]{64}")


class _Loose(BaseModel):
    model_config = ConfigDict(extra="allow")


class SlackUser(_Loose):
    id: str
    username: str | None = None
    team_id: str | None = None


class SlackTeam(_Loose):
    id: str
    domain: str | None = None


class SlackChannel(_Loose):
    id: str


class SlackView(_Loose):
    id: str
    type: str  # Bolt reads it unguarded (a view without one made it raise): required here
    hash: str | None = None
    callback_id: str = ""
    private_metadata: str = ""
    state: dict[str, Any] = Field(default_factory=dict)
    root_view_id: str | None = None

    @field_validator("state")
    @classmethod
    def _state_shape(cls, state: dict[str, Any]) -> dict[str, Any]:
        """`values` maps block id -> action id -> element state; anything else is a malformed payload."""
        values = state.get("values") or {}
        if not isinstance(values, dict) or not all(
            isinstance(block, dict) and all(isinstance(element, dict) for element in block.values())
            for block in values.values()
        ):
            raise ValueError("view.state.values must map block ids to action ids to element states")
        return state

    def values(self) -> dict[str, dict[str, Any]]:
        return self.state.get("values", {}) or {}

    def value(self, block_id: str, action_id: str) -> Any:
        """The submitted value of one input, whatever its element type."""
        element = self.values().get(block_id, {}).get(action_id) or {}
        for key in ("value", "selected_date", "selected_user", "selected_conversation", "selected_channel"):
            if element.get(key) is not None:
                return element[key]
        if element.get("selected_option") is not None:
            return element["selected_option"].get("value")
        if element.get("selected_options") is not None:
            return [option.get("value") for option in element["selected_options"]]
        return None


class Payload(Protocol):
    """What every payload from a person says: who, in which workspace, where ("" when nowhere),
    and the modal it came from (if any). One context type serves every kind of request."""

    @property
    def team_id(self) -> str: ...

    @property
    def user_id(self) -> str: ...

    @property
    def channel_id(self) -> str: ...

    @property
    def view(self) -> SlackView | None: ...


class SlashCommand(_Loose):
    command: str
    text: str = ""
    team_id: str
    user_id: str
    channel_id: str = ""
    trigger_id: str = ""
    response_url: str = ""

    @property
    def view(self) -> None:
        return None


class _Interactive(_Loose):
    """An interactive payload: the team and the user are objects."""

    team: SlackTeam
    user: SlackUser

    @property
    def team_id(self) -> str:
        return self.team.id

    @property
    def user_id(self) -> str:
        return self.user.id


class BlockAction(_Loose):
    action_id: str
    block_id: str = ""
    value: str | None = None
    selected_options: list[dict[str, Any]] | None = None


class ActionPayload(_Interactive):
    type: Literal["block_actions"]
    actions: list[BlockAction] = Field(min_length=1)
    trigger_id: str = ""
    channel: SlackChannel | None = None
    message: dict[str, Any] | None = None
    view: SlackView | None = None
    container: dict[str, Any] = Field(default_factory=dict)

    @property
    def action(self) -> BlockAction:
        return self.actions[0]

    @property
    def channel_id(self) -> str:
        return self.channel.id if self.channel is not None else ""


class ViewPayload(_Interactive):
    type: Literal["view_submission", "view_closed"]
    view: SlackView
    trigger_id: str = ""

    @property
    def channel_id(self) -> str:
        return ""


class SuggestionPayload(_Interactive):
    type: Literal["block_suggestion"]
    action_id: str
    block_id: str = ""
    value: str = ""
    view: SlackView | None = None

    @property
    def channel_id(self) -> str:
        return ""


class EventCallback(_Loose):
    type: Literal["event_callback", "url_verification"]
    team_id: str | None = None
    event: dict[str, Any] | None = None
    challenge: str | None = None


INTERACTIVE: dict[str, type[_Interactive]] = {
    "block_actions": ActionPayload,
    "view_submission": ViewPayload,
    "view_closed": ViewPayload,
    "block_suggestion": SuggestionPayload,
}


class Rejected(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class Guarded:
    """A request that passed the guard: its body as Bolt reads it, and as the bot's model."""

    body: dict[str, Any]
    payload: BaseModel


def parse_body(body: bytes, content_type: str) -> Guarded:
    """Parse a (signed) body into one of the payload models, or raise Rejected(400)."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Rejected(400, "body is not UTF-8") from exc
    try:
        if content_type.startswith("application/json"):
            data = json.loads(text)
            return Guarded(data, EventCallback.model_validate(data))
        form = {key: values[-1] for key, values in parse_qs(text, keep_blank_values=True).items()}
        if "payload" in form:
            data = json.loads(form["payload"])
            if not isinstance(data, dict) or data.get("type") not in INTERACTIVE:
                raise Rejected(400, "unsupported payload")
            return Guarded(data, INTERACTIVE[data["type"]].model_validate(data))
        return Guarded(dict(form), SlashCommand.model_validate(form))
    except (ValidationError, ValueError, RecursionError) as exc:  # RecursionError: JSON nested too deep
        raise Rejected(400, "malformed Slack payload") from exc


def guard_request(
    body: bytes, headers: dict[str, str], signing_secret: str, now: float | None = None
) -> Guarded:
    """Verify signature and freshness, then shape. Returns what was parsed."""
    timestamp = headers.get("x-slack-request-timestamp", "")
    signature = headers.get("x-slack-signature", "")
    if not timestamp or not signature:
        raise Rejected(401, "unsigned request")
    if not _TIMESTAMP.fullmatch(timestamp):
        raise Rejected(401, "bad timestamp")
    if not _SIGNATURE.fullmatch(signature):
        raise Rejected(401, "bad signature")
    age = abs((now or time.time()) - int(timestamp))
    if age > MAX_REQUEST_AGE_SECONDS:
        raise Rejected(401, "stale request")
    expected = "v0=" + hmac.new(signing_secret.encode(), b"v0:" + timestamp.encode() + b":" + body,
                                hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, signature):
        raise Rejected(401, "bad signature")
    return parse_body(body, headers.get("content-type", ""))
