"""A local emulator of the Slack Web API methods the bot uses.

`WebClient(token=emulator.bot_token, base_url=emulator.api_url)` talks to it over loopback. It
enforces what the real platform enforces and `slack_sdk` does not check locally (trigger ids used
once and expiring, the modal stack limit, view hashes, block and size limits, per-method rate
limits with HTTP 429 + Retry-After) and records every call so tests can inspect what the bot did.
Blocks and views are checked by `sandbox.blockkit`.
State lives in memory (one workspace per emulator, plus the workspaces that installed the app
through OAuth: `/oauth/v2/authorize` and `oauth.v2.access` issue each its own bot token, and every
recorded call names the team whose token made it); every access holds one lock, so the bot may
call it from any number of threads while a test inspects it.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import hashlib
import itertools
import json
import math
import secrets
import threading
import time
from base64 import b64decode
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from sandbox.blockkit import MAX_MESSAGE_BLOCKS, error_message, validate_blocks, validate_view
from sandbox.server import Emulator, ServerThread

MAX_VIEW_BYTES = 250_000
MAX_MESSAGE_TEXT = 40_000
MAX_VIEW_STACK = 3

# Fields that arrive as JSON strings when a client sends a form body.
_JSON_FIELDS = ("blocks", "attachments", "view", "files", "metadata")


@dataclass(frozen=True)
class RateLimit:
    """At most `calls` calls of one method per `window` seconds (per workspace)."""

    calls: int
    window: float


DEFAULT_RATE_LIMITS: dict[str, RateLimit] = {"chat.update": RateLimit(calls=50, window=60.0)}


@dataclass(frozen=True)
class UserProfile:
    name: str
    email: str
    tz: str = "America/Los_Angeles"
    real_name: str = ""
    is_admin: bool = False  # a workspace admin (users.info `is_admin`)


@dataclass(frozen=True)
class ApiCall:
    """One recorded Web API call. `args` never contains the token."""

    method: str
    args: dict[str, Any]
    time: float
    status: int
    response: dict[str, Any]
    team: str = ""  # the team whose token made the call

    @property
    def ok(self) -> bool:
        return bool(self.response.get("ok"))

    @property
    def error(self) -> str | None:
        return self.response.get("error")


@dataclass(frozen=True)
class MessageVersion:
    time: float
    text: str
    blocks: list[dict[str, Any]]


@dataclass
class PostedMessage:
    """A message with its latest content; `history` holds every version, the original first."""

    channel: str
    ts: str
    text: str
    blocks: list[dict[str, Any]]
    thread_ts: str | None
    user: str
    history: list[MessageVersion] = field(default_factory=list)

    @property
    def updates(self) -> list[MessageVersion]:
        return self.history[1:]

    def to_payload(self) -> dict[str, Any]:
        """The message as Slack puts it in an interaction payload."""
        payload: dict[str, Any] = {
            "type": "message", "ts": self.ts, "text": self.text, "blocks": copy.deepcopy(self.blocks),
            "user": self.user, "team": None,
        }
        if self.thread_ts:
            payload["thread_ts"] = self.thread_ts
        return payload


@dataclass(frozen=True)
class EphemeralMessage:
    channel: str
    user: str
    text: str
    blocks: list[dict[str, Any]]
    ts: str
    thread_ts: str | None


@dataclass(frozen=True)
class UploadedFile:
    id: str
    name: str
    title: str
    content: bytes
    channel: str | None
    initial_comment: str | None
    thread_ts: str | None


@dataclass
class _Trigger:
    user: str
    issued: float
    used: bool = False


@dataclass
class _Install:
    """A workspace that installed the app through OAuth: its current bot token and refresh token."""

    team_id: str
    team_name: str
    installer: str
    bot_user_id: str
    refresh_token: str | None = None


@dataclass
class _PendingUpload:
    name: str
    length: int
    content: bytes | None = None


class _Fail(Exception):
    """Ends a method call with `{"ok": false, "error": ...}` (HTTP `status`)."""

    def __init__(
        self, error: str, *, status: int = 200, retry_after: int | None = None, messages: list[str] | None = None
    ) -> None:
        super().__init__(error)
        self.error = error
        self.status = status
        self.retry_after = retry_after
        self.messages = messages or []

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"ok": False, "error": self.error}
        if self.messages:
            body["response_metadata"] = {"messages": self.messages}
        return body


class _Window:
    """Sliding-window call counter for one rate limit."""

    def __init__(self, limit: RateLimit) -> None:
        self.limit = limit
        self.times: deque[float] = deque()

    def admit(self, now: float) -> int | None:
        """Count the call and return None, or return the whole seconds to wait before retrying."""
        while self.times and now - self.times[0] >= self.limit.window:
            self.times.popleft()
        if len(self.times) >= self.limit.calls:
            return max(1, math.ceil(self.times[0] + self.limit.window - now))
        self.times.append(now)
        return None


# ---------------------------------------------------------------- the emulator


def _random_id(prefix: str, length: int = 10) -> str:
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    return prefix + "".join(secrets.choice(alphabet) for _ in range(length))


def _is_user_id(value: str) -> bool:
    return value[:1] in ("U", "W") and value[1:].isalnum() and len(value) > 1


def _is_channel_id(value: str) -> bool:
    return value[:1] in ("C", "G", "D") and value[1:].isalnum() and len(value) > 1


class SlackEmulator(Emulator):
    """The Slack Web API on loopback. Start with `start()` or `with SlackEmulator() as slack:`.

    Knobs: `trigger_ttl` (seconds a trigger_id lives), `rate_limits` (method -> RateLimit; default
    chat.update 50/min), `min_update_interval` (seconds between two chat.update of one message;
    0 = off), `users` (user id -> UserProfile; other U... ids get a profile made from the id).
    """

    def __init__(
        self,
        *,
        bot_token: str = "xoxb-emulator-token",
        app_token: str = "xapp-emulator-token",
        team_id: str = "T0001",
        team_domain: str = "connect-dynamics",
        app_id: str = "A0001",
        bot_user_id: str = "UBOT0001",
        bot_id: str = "B0001",
        trigger_ttl: float = 3.0,
        rate_limits: dict[str, RateLimit] | None = None,
        min_update_interval: float = 0.0,
        users: dict[str, UserProfile] | None = None,
        client_id: str = "1111.2222",
        client_secret: str = "emulator-client-secret",
        token_rotation: bool = False,
        token_lifetime: int = 43_200,
    ) -> None:
        self.bot_token = bot_token
        self.app_token = app_token
        self.team_id = team_id
        self.team_domain = team_domain
        self.app_id = app_id
        self.bot_user_id = bot_user_id
        self.bot_id = bot_id
        self.trigger_ttl = trigger_ttl
        self.client_id, self.client_secret = client_id, client_secret
        self.token_rotation, self.token_lifetime = token_rotation, token_lifetime
        self.oauth_redirect_url = ""  # the app's configured redirect URL (used when a request names none)
        self.min_update_interval = min_update_interval
        self._rate_limits = dict(DEFAULT_RATE_LIMITS if rate_limits is None else rate_limits)
        self._users = dict(users or {})
        self._cond = threading.Condition(threading.RLock())
        self._methods: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
            "auth.test": self._auth_test,
            "views.open": self._views_open,
            "views.push": self._views_push,
            "views.update": self._views_update,
            "views.publish": self._views_publish,
            "chat.postMessage": self._chat_post_message,
            "chat.update": self._chat_update,
            "chat.postEphemeral": self._chat_post_ephemeral,
            "conversations.open": self._conversations_open,
            "users.info": self._users_info,
            "files.getUploadURLExternal": self._files_get_upload_url,
            "files.completeUploadExternal": self._files_complete_upload,
            "apps.connections.open": self._apps_connections_open,
        }
        self._ts_counter = itertools.count(1)
        self._current_token: str | None = None
        self._reset_state()
        self._server: ServerThread | None = None
        self._socket = _SocketHub()
        self.app = Starlette(
            routes=[
                Route("/api/{method}", self._endpoint, methods=["GET", "POST"]),
                Route("/oauth/v2/authorize", self._authorize_endpoint, methods=["GET"]),
                Route("/upload/{file_id}", self._upload_endpoint, methods=["POST"]),
                Route("/respond/{key}", self._respond_endpoint, methods=["POST"]),
                WebSocketRoute("/socket", self._socket_endpoint),
            ]
        )

    def _reset_state(self) -> None:
        self._calls: list[ApiCall] = []
        self._triggers: dict[str, _Trigger] = {}
        self._views: dict[str, dict[str, Any]] = {}
        self._view_owner: dict[str, str] = {}
        self._stacks: dict[str, list[str]] = {}
        self._homes: dict[str, str] = {}
        self._messages: dict[tuple[str, str], PostedMessage] = {}
        self._ephemeral: list[EphemeralMessage] = []
        self._dm_channels: dict[str, str] = {}
        self._uploads: dict[str, _PendingUpload] = {}
        self._files: list[UploadedFile] = []
        self._windows: dict[str, _Window] = {}
        self._last_update: dict[tuple[str, str], float] = {}
        self._socket_tickets: set[str] = set()
        self._response_urls: dict[str, tuple[str, str]] = {}
        self._codes: dict[str, _Install] = {}
        self._installs: dict[str, _Install] = {}  # bot token -> install
        self._refresh_tokens: dict[str, _Install] = {}

    # ------------------------------------------------------------ lifecycle

    def start(self) -> SlackEmulator:
        self._server = ServerThread(self.app).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._socket.close_all()
            self._server.stop()
            self._server = None

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def api_url(self) -> str:
        """The `base_url` for `slack_sdk.WebClient` (ends with a slash)."""
        return self.url + "/api/"

    # ------------------------------------------------------------ knobs and test helpers

    def set_rate_limit(self, method: str, calls: int, window: float) -> None:
        with self._cond:
            self._rate_limits[method] = RateLimit(calls, window)
            self._windows.pop(method, None)

    def set_user(self, user_id: str, profile: UserProfile) -> None:
        with self._cond:
            self._users[user_id] = profile

    def user_profile(self, user_id: str) -> UserProfile:
        with self._cond:
            return self._users.get(user_id) or UserProfile(
                name=f"user-{user_id.lower()}", email=f"{user_id.lower()}@example.com", real_name=f"User {user_id}"
            )

    def new_trigger_id(self, user_id: str) -> str:
        """A trigger_id as Slack puts in a command or interaction payload, valid once for `trigger_ttl`."""
        trigger_id = f"{int(time.time())}.{secrets.randbelow(10**10):010d}.{secrets.token_hex(16)}"
        with self._cond:
            self._triggers[trigger_id] = _Trigger(user=user_id, issued=time.monotonic())
        return trigger_id

    def new_response_url(self, user_id: str, channel: str) -> str:
        """A response_url on this emulator; what the app posts there is recorded as method `response_url`
        (and, unless `response_type` is `in_channel`, as an ephemeral message to the user)."""
        key = secrets.token_hex(12)
        with self._cond:
            self._response_urls[key] = (user_id, channel)
        return f"{self.url}/respond/{key}"

    def dm_channel(self, user_id: str) -> str:
        """The D... channel id of the bot's DM with `user_id` (the one conversations.open returns)."""
        with self._cond:
            if user_id not in self._dm_channels:
                self._dm_channels[user_id] = "D" + user_id[1:].rjust(8, "0")
            return self._dm_channels[user_id]

    def reset(self) -> None:
        """Forget every call, view, message, file and trigger (knobs and user profiles stay)."""
        with self._cond:
            self._reset_state()

    # ------------------------------------------------------------ inspection

    def calls(self, method: str | None = None) -> list[ApiCall]:
        with self._cond:
            return [c for c in self._calls if method is None or c.method == method]

    def wait_for(
        self, method: str, predicate: Callable[[ApiCall], bool] | None = None, timeout: float = 10
    ) -> ApiCall:
        """The first recorded call of `method` matching `predicate`, waiting up to `timeout` seconds."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for call in self._calls:
                    if call.method == method and (predicate is None or predicate(call)):
                        return call
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    seen = [f"{c.method}:{c.error or 'ok'}" for c in self._calls]
                    raise TimeoutError(f"no matching {method} call within {timeout}s; calls seen: {seen}")
                self._cond.wait(remaining)

    @property
    def views(self) -> dict[str, dict[str, Any]]:
        """Every view by id with its latest content (closed ones included; see `view_stack`)."""
        with self._cond:
            return copy.deepcopy(self._views)

    def view(self, view_id: str) -> dict[str, Any]:
        with self._cond:
            return copy.deepcopy(self._views[view_id])

    def view_stack(self, user_id: str) -> list[dict[str, Any]]:
        """The modals open for a user, root first."""
        with self._cond:
            return [copy.deepcopy(self._views[v]) for v in self._stacks.get(user_id, [])]

    def home(self, user_id: str) -> dict[str, Any] | None:
        with self._cond:
            view_id = self._homes.get(user_id)
            return copy.deepcopy(self._views[view_id]) if view_id else None

    def messages(self, channel: str | None = None) -> list[PostedMessage]:
        """Posted messages in post order, with their latest content and update history."""
        with self._cond:
            return [copy.deepcopy(m) for m in self._messages.values() if channel is None or m.channel == channel]

    def message(self, channel: str, ts: str) -> PostedMessage:
        with self._cond:
            return copy.deepcopy(self._messages[(channel, ts)])

    def ephemeral(self, user: str | None = None) -> list[EphemeralMessage]:
        with self._cond:
            return [m for m in self._ephemeral if user is None or m.user == user]

    def files(self) -> list[UploadedFile]:
        with self._cond:
            return list(self._files)

    # ------------------------------------------------------------ what a user does in a modal

    def submit_view(self, view_id: str, ack: dict[str, Any] | None) -> None:
        """Apply the app's answer to a view_submission as Slack does (close, update, push, clear, errors).

        A view id the emulator never issued is ignored (a test may submit a hand-made view).
        """
        ack = ack or {}
        action = ack.get("response_action")
        with self._cond:
            user = self._view_owner.get(view_id)
            if user is None:
                return
            if action == "errors":
                return
            if action == "clear":
                self._close(user, clear=True)
            elif action == "update":
                self._replace_view(view_id, ack["view"])
            elif action == "push":
                stack = self._stacks.get(user, [])
                if len(stack) >= MAX_VIEW_STACK:
                    raise ValueError("push_limit_reached")
                self._new_view(user, ack["view"], stack)
            else:
                self._close(user, clear=False)
            self._cond.notify_all()

    def close_view(self, view_id: str, *, clear: bool = False) -> None:
        """The user closed the top modal (or, with `clear`, the whole stack); unknown ids are ignored."""
        with self._cond:
            user = self._view_owner.get(view_id)
            if user is not None:
                self._close(user, clear=clear)

    # ------------------------------------------------------------ HTTP

    async def _endpoint(self, request: Request) -> Response:
        method = request.path_params["method"]
        try:
            args = await _parse_args(request)
        except _Fail as fail:
            return self._finish(method, {}, fail.status, fail.body(), fail.retry_after)
        token = args.pop("token", None)
        auth = request.headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            token = auth[7:].strip()
        with self._cond:
            team = self._team_of(token)
            try:
                if method == "oauth.v2.access":
                    status, body = 200, self._oauth_v2_access(args, auth)
                    args = {k: v for k, v in args.items() if k not in ("client_secret", "code", "refresh_token")}
                else:
                    status, body = 200, self._call(method, token, args)
            except _Fail as fail:
                return self._finish(method, args, fail.status, fail.body(), fail.retry_after, team)
            return self._finish(method, args, status, body, None, team)

    def _finish(
        self, method: str, args: dict[str, Any], status: int, body: dict[str, Any], retry_after: int | None,
        team: str = "",
    ) -> Response:
        with self._cond:
            recorded = {k: v for k, v in body.items() if k not in ("access_token", "refresh_token")}
            self._calls.append(ApiCall(method, copy.deepcopy(args), time.time(), status, copy.deepcopy(recorded), team))
            self._cond.notify_all()
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
        return JSONResponse(body, status_code=status, headers=headers)

    def _call(self, method: str, token: str | None, args: dict[str, Any]) -> dict[str, Any]:
        handler = self._methods.get(method)
        if handler is None:
            raise _Fail("unknown_method")
        if not token:
            raise _Fail("not_authed")
        expected = self.app_token if method == "apps.connections.open" else self.bot_token
        if token != expected and not (token in self._installs and method != "apps.connections.open"):
            other = self.bot_token if method == "apps.connections.open" else self.app_token
            raise _Fail("not_allowed_token_type" if token == other else "invalid_auth")
        self._admit(method, method)
        self._current_token = token  # the caller, for methods that answer per workspace (auth.test)
        return handler(args)

    def _admit(self, key: str, method: str) -> None:
        limit = self._rate_limits.get(method)
        if limit is None:
            return
        window = self._windows.setdefault(key, _Window(limit))
        retry_after = window.admit(time.monotonic())
        if retry_after is not None:
            raise _Fail("ratelimited", status=429, retry_after=retry_after)

    async def _upload_endpoint(self, request: Request) -> Response:
        file_id = request.path_params["file_id"]
        if request.headers.get("content-type", "").startswith("multipart/form-data"):
            form = await request.form()
            upload = form.get("file") or form.get("filename")
            content = await upload.read() if hasattr(upload, "read") else str(upload or "").encode()
        else:
            content = await request.body()
        with self._cond:
            pending = self._uploads.get(file_id)
            if pending is None:
                return PlainTextResponse("invalid upload url", status_code=404)
            pending.content = content
        return PlainTextResponse(f"OK - {len(content)}")

    async def _respond_endpoint(self, request: Request) -> Response:
        try:
            args = await _parse_args(request)
        except _Fail as fail:
            return self._finish("response_url", {}, 400, fail.body(), None)
        with self._cond:
            target = self._response_urls.get(request.path_params["key"])
            if target is None:
                return self._finish("response_url", args, 404, {"ok": False, "error": "expired_url"}, None)
            user, channel = target
            args.update(user=user, channel=channel)
            if args.get("response_type") != "in_channel" and not args.get("delete_original"):
                self._ephemeral.append(EphemeralMessage(
                    channel, user, str(args.get("text") or ""), args.get("blocks") or [], self._new_ts(), None))
            return self._finish("response_url", args, 200, {"ok": True}, None)

    # ------------------------------------------------------------ methods

    def _auth_test(self, args: dict[str, Any]) -> dict[str, Any]:
        install = self._installs.get(self._current_token)
        team_id, domain = (install.team_id, install.team_name) if install else (self.team_id, self.team_domain)
        return {
            "ok": True, "url": f"https://{domain}.slack.com/", "team": domain,
            "user": "connect-dynamics", "team_id": team_id,
            "user_id": install.bot_user_id if install else self.bot_user_id,
            "bot_id": self.bot_id, "is_enterprise_install": False,
        }

    # ------------------------------------------------------------ installing through OAuth

    def _team_of(self, token: str | None) -> str:
        install = self._installs.get(token or "")
        return install.team_id if install else (self.team_id if token == self.bot_token else "")

    def installed_token(self, team_id: str) -> str | None:
        """The current bot token of a workspace that installed the app through OAuth."""
        with self._cond:
            return next((t for t, i in self._installs.items() if i.team_id == team_id), None)

    async def _authorize_endpoint(self, request: Request) -> Response:
        """slack.com/oauth/v2/authorize after the user pressed Allow: back to the app with a code.

        `team` (Slack's own parameter) picks the workspace; `user` (the emulator's) is who installs."""
        query = request.query_params
        if query.get("client_id") != self.client_id:
            return PlainTextResponse("invalid_client_id", status_code=400)
        redirect = query.get("redirect_uri") or self.oauth_redirect_url
        if not redirect:
            return PlainTextResponse("no redirect url configured", status_code=400)
        team_id = query.get("team") or self.team_id
        code = secrets.token_hex(12)
        with self._cond:
            self._codes[code] = _Install(team_id=team_id, team_name=f"workspace-{team_id.lower()}",
                                         installer=query.get("user") or "U0INSTALLER", bot_user_id=f"UBOT{team_id}")
        return RedirectResponse(f"{redirect}?{urlencode({'code': code, 'state': query.get('state', '')})}",
                                status_code=302)

    def _oauth_v2_access(self, args: dict[str, Any], auth: str) -> dict[str, Any]:
        client_id, client_secret = args.get("client_id"), args.get("client_secret")
        if auth.lower().startswith("basic "):
            client_id, _, client_secret = b64decode(auth[6:]).decode().partition(":")
        if client_id != self.client_id or client_secret != self.client_secret:
            raise _Fail("invalid_client_id" if client_id != self.client_id else "bad_client_secret")
        if args.get("grant_type") == "refresh_token":
            install = self._refresh_tokens.pop(str(args.get("refresh_token") or ""), None)
            if install is None:
                raise _Fail("invalid_refresh_token")
            for old in [t for t, i in self._installs.items() if i is install]:
                del self._installs[old]
        else:
            install = self._codes.pop(str(args.get("code") or ""), None)
            if install is None:
                raise _Fail("invalid_code")
            for old in [t for t, i in self._installs.items() if i.team_id == install.team_id]:
                del self._installs[old]  # a new install replaces the workspace's token
        token = f"xoxb-{install.team_id}-{secrets.token_hex(8)}"
        self._installs[token] = install
        body: dict[str, Any] = {
            "ok": True, "app_id": self.app_id, "access_token": token, "token_type": "bot",
            "scope": "commands,chat:write,im:write,files:write,users:read", "bot_user_id": install.bot_user_id,
            "team": {"id": install.team_id, "name": install.team_name}, "enterprise": None,
            "authed_user": {"id": install.installer}, "is_enterprise_install": False,
        }
        if self.token_rotation:
            install.refresh_token = f"xoxe-1-{secrets.token_hex(8)}"
            self._refresh_tokens[install.refresh_token] = install
            body.update(refresh_token=install.refresh_token, expires_in=self.token_lifetime)
        return body

    def _use_trigger(self, args: dict[str, Any]) -> str:
        trigger = self._triggers.get(str(args.get("trigger_id") or ""))
        if trigger is None:
            raise _Fail("invalid_trigger_id")
        if trigger.used:
            raise _Fail("exchanged_trigger_id")
        if time.monotonic() - trigger.issued > self.trigger_ttl:
            raise _Fail("expired_trigger_id")
        trigger.used = True
        return trigger.user

    def _checked_view(self, args: dict[str, Any]) -> dict[str, Any]:
        view = args.get("view")
        if view is None:
            raise _Fail("invalid_arguments", messages=[error_message("must provide an object", "/view")])
        if len(json.dumps(view).encode()) > MAX_VIEW_BYTES:
            raise _Fail("view_too_large")
        errors = validate_view(view)
        if errors:
            raise _Fail("invalid_arguments", messages=errors)
        external_id = view.get("external_id")
        if external_id and any(
            v.get("external_id") == external_id and v["id"] != args.get("view_id") for v in self._views.values()
        ):
            raise _Fail("duplicate_external_id")
        return view

    def _view_object(self, view: dict[str, Any], view_id: str, root: str, previous: str | None) -> dict[str, Any]:
        team = self._team_of(self._current_token) or self.team_id  # the workspace whose bot opened it
        obj = {
            "id": view_id, "team_id": team, "type": view["type"], "blocks": [], "private_metadata": "",
            "callback_id": "", "state": {"values": {}}, "hash": f"{time.time():.6f}.{secrets.token_hex(4)}",
            "title": None, "clear_on_close": False, "notify_on_close": False, "close": None, "submit": None,
            "previous_view_id": previous, "root_view_id": root, "app_id": self.app_id, "external_id": "",
            "app_installed_team_id": team, "bot_id": self.bot_id,
        }
        obj.update(copy.deepcopy(view))
        obj.update(id=view_id, previous_view_id=previous, root_view_id=root)
        return obj

    def _new_view(self, user: str, view: dict[str, Any], stack: list[str]) -> dict[str, Any]:
        view_id = _random_id("V")
        obj = self._view_object(view, view_id, stack[0] if stack else view_id, stack[-1] if stack else None)
        self._views[view_id] = obj
        self._view_owner[view_id] = user
        self._stacks[user] = [*stack, view_id]
        return obj

    def _replace_view(self, view_id: str, view: dict[str, Any]) -> dict[str, Any]:
        old = self._views[view_id]
        obj = self._view_object(view, view_id, old["root_view_id"], old["previous_view_id"])
        self._views[view_id] = obj
        return obj

    def _close(self, user: str, *, clear: bool) -> None:
        stack = self._stacks.get(user, [])
        self._stacks[user] = [] if clear else stack[:-1]

    def _views_open(self, args: dict[str, Any]) -> dict[str, Any]:
        view = self._checked_view(args)
        user = self._use_trigger(args)
        return {"ok": True, "view": copy.deepcopy(self._new_view(user, view, []))}

    def _views_push(self, args: dict[str, Any]) -> dict[str, Any]:
        view = self._checked_view(args)
        user = self._use_trigger(args)
        stack = self._stacks.get(user, [])
        if not stack:
            raise _Fail("not_found")
        if len(stack) >= MAX_VIEW_STACK:
            raise _Fail("push_limit_reached")
        return {"ok": True, "view": copy.deepcopy(self._new_view(user, view, stack))}

    def _views_update(self, args: dict[str, Any]) -> dict[str, Any]:
        view_id, external_id = args.get("view_id"), args.get("external_id")
        if not view_id and not external_id:
            raise _Fail("invalid_arguments", messages=[error_message("must provide view_id or external_id", "/view_id")])
        if not view_id:
            view_id = next((k for k, v in self._views.items() if v.get("external_id") == external_id), None)
        if view_id not in self._views:
            raise _Fail("not_found")
        view = self._checked_view({**args, "view_id": view_id})
        expected = args.get("hash")
        if expected is not None and expected != self._views[view_id]["hash"]:
            raise _Fail("hash_conflict")
        return {"ok": True, "view": copy.deepcopy(self._replace_view(view_id, view))}

    def _views_publish(self, args: dict[str, Any]) -> dict[str, Any]:
        user = str(args.get("user_id") or "")
        if not _is_user_id(user):
            raise _Fail("user_not_found")
        view = self._checked_view(args)
        if view["type"] != "home":
            raise _Fail("invalid_arguments", messages=[error_message("must be a home view", "/view/type")])
        home_id = self._homes.get(user)
        if home_id is None:
            home_id = _random_id("V")
            self._homes[user] = home_id
            self._view_owner[home_id] = user
        elif args.get("hash") is not None and args["hash"] != self._views[home_id]["hash"]:
            raise _Fail("hash_conflict")
        self._views[home_id] = self._view_object(view, home_id, home_id, None)
        return {"ok": True, "view": copy.deepcopy(self._views[home_id])}

    def _new_ts(self) -> str:
        return f"{int(time.time())}.{next(self._ts_counter):06d}"

    def _message_content(self, args: dict[str, Any], *, required: bool) -> tuple[str | None, list[dict] | None]:
        text, blocks = args.get("text"), args.get("blocks")
        if blocks is not None:
            errors = validate_blocks(blocks, MAX_MESSAGE_BLOCKS)
            if errors:
                raise _Fail("invalid_blocks", messages=errors)
        if text is not None and len(str(text)) > MAX_MESSAGE_TEXT:
            raise _Fail("msg_too_long")
        if required and not text and not blocks and not args.get("attachments"):
            raise _Fail("no_text")
        return (None if text is None else str(text)), blocks

    def _resolve_channel(self, channel: Any) -> str:
        channel = str(channel or "")
        if _is_user_id(channel):
            return self.dm_channel(channel)
        if not _is_channel_id(channel):
            raise _Fail("channel_not_found")
        return channel

    def _chat_post_message(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._resolve_channel(args.get("channel"))
        text, blocks = self._message_content(args, required=True)
        ts = self._new_ts()
        thread_ts = args.get("thread_ts") or None
        message = PostedMessage(channel, ts, text or "", blocks or [], thread_ts, self.bot_user_id)
        message.history.append(MessageVersion(time.time(), message.text, copy.deepcopy(message.blocks)))
        self._messages[(channel, ts)] = message
        return {"ok": True, "channel": channel, "ts": ts, "message": message.to_payload()}

    def _chat_update(self, args: dict[str, Any]) -> dict[str, Any]:
        channel, ts = str(args.get("channel") or ""), str(args.get("ts") or "")
        if not _is_channel_id(channel):
            raise _Fail("channel_not_found")
        message = self._messages.get((channel, ts))
        if message is None:
            raise _Fail("message_not_found")
        text, blocks = self._message_content(args, required=True)
        if self.min_update_interval > 0:
            now = time.monotonic()
            last = self._last_update.get((channel, ts))
            if last is not None and now - last < self.min_update_interval:
                wait = max(1, math.ceil(last + self.min_update_interval - now))
                raise _Fail("ratelimited", status=429, retry_after=wait)
            self._last_update[(channel, ts)] = now
        if text is not None:
            message.text = text
            if blocks is None:
                message.blocks = []
        if blocks is not None:
            message.blocks = blocks
        message.history.append(MessageVersion(time.time(), message.text, copy.deepcopy(message.blocks)))
        return {"ok": True, "channel": channel, "ts": ts, "text": message.text, "message": message.to_payload()}

    def _chat_post_ephemeral(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._resolve_channel(args.get("channel"))
        user = str(args.get("user") or "")
        if not _is_user_id(user):
            raise _Fail("user_not_found")
        text, blocks = self._message_content(args, required=True)
        ts = self._new_ts()
        self._ephemeral.append(
            EphemeralMessage(channel, user, text or "", blocks or [], ts, args.get("thread_ts") or None)
        )
        return {"ok": True, "message_ts": ts}

    def _conversations_open(self, args: dict[str, Any]) -> dict[str, Any]:
        if args.get("channel"):
            return {"ok": True, "channel": {"id": self._resolve_channel(args["channel"])}}
        users = [u for u in str(args.get("users") or "").split(",") if u]
        if not users:
            raise _Fail("users_list_not_supplied")
        if not all(_is_user_id(u) for u in users):
            raise _Fail("user_not_found")
        if len(users) > 1:
            digest = hashlib.sha1(",".join(sorted(users)).encode()).hexdigest()[:10].upper()
            return {"ok": True, "channel": {"id": "G" + digest}}
        already = users[0] in self._dm_channels
        channel = {"id": self.dm_channel(users[0]), "is_im": True, "user": users[0]}
        return {"ok": True, "no_op": already, "already_open": already, "channel": channel}

    def _users_info(self, args: dict[str, Any]) -> dict[str, Any]:
        user_id = str(args.get("user") or "")
        if not _is_user_id(user_id):
            raise _Fail("user_not_found")
        profile = self.user_profile(user_id)
        real_name = profile.real_name or profile.name
        return {
            "ok": True,
            "user": {
                "id": user_id, "team_id": self.team_id, "name": profile.name, "real_name": real_name,
                "deleted": False, "is_bot": False, "is_admin": profile.is_admin, "tz": profile.tz, "tz_label": profile.tz,
                "tz_offset": 0,
                "profile": {
                    "email": profile.email, "real_name": real_name, "display_name": profile.name,
                    "real_name_normalized": real_name, "display_name_normalized": profile.name,
                    "team": self.team_id,
                },
            },
        }

    def _files_get_upload_url(self, args: dict[str, Any]) -> dict[str, Any]:
        name = str(args.get("filename") or "")
        try:
            length = int(args.get("length"))
        except (TypeError, ValueError):
            raise _Fail("invalid_arguments") from None
        if not name:
            raise _Fail("invalid_arguments")
        file_id = _random_id("F")
        self._uploads[file_id] = _PendingUpload(name=name, length=length)
        return {"ok": True, "upload_url": f"{self.url}/upload/{file_id}", "file_id": file_id}

    def _files_complete_upload(self, args: dict[str, Any]) -> dict[str, Any]:
        items = args.get("files")
        if not isinstance(items, list) or not items:
            raise _Fail("invalid_arguments")
        channels = [c for c in str(args.get("channels") or args.get("channel_id") or "").split(",") if c]
        targets = [self._resolve_channel(c) for c in channels] or [None]
        done = []
        for item in items:
            pending = self._uploads.get(str(item.get("id"))) if isinstance(item, dict) else None
            if pending is None or pending.content is None:
                raise _Fail("file_not_found")
            done.append((item["id"], item.get("title") or pending.name, pending))
        out = []
        for file_id, title, pending in done:
            del self._uploads[file_id]
            for channel in targets:
                self._files.append(
                    UploadedFile(file_id, pending.name, title, pending.content or b"", channel,
                                 args.get("initial_comment"), args.get("thread_ts"))
                )
            out.append({"id": file_id, "name": pending.name, "title": title, "size": len(pending.content or b"")})
        return {"ok": True, "files": out}

    def _apps_connections_open(self, args: dict[str, Any]) -> dict[str, Any]:
        ticket = secrets.token_hex(16)
        self._socket_tickets.add(ticket)
        ws_url = self.url.replace("http://", "ws://").replace("https://", "wss://")
        return {"ok": True, "url": f"{ws_url}/socket?ticket={ticket}"}

    # ------------------------------------------------------------ Socket Mode

    async def _socket_endpoint(self, websocket: WebSocket) -> None:
        with self._cond:
            ticket = websocket.query_params.get("ticket", "")
            valid = ticket in self._socket_tickets
            self._socket_tickets.discard(ticket)
        if not valid:
            await websocket.close(code=4001)
            return
        await websocket.accept()
        await self._socket.serve(websocket, self.app_id)

    def socket_send(
        self, envelope_type: str, payload: dict[str, Any], *, accepts_response_payload: bool = True
    ) -> str:
        """Push an envelope (`interactive`, `slash_commands`, `events_api`) to the connected client."""
        return self._socket.send(envelope_type, payload, accepts_response_payload)

    def socket_ack(self, envelope_id: str, timeout: float = 10) -> dict[str, Any]:
        """The client's ack for an envelope (`{"envelope_id": ..., "payload": ...}`)."""
        return self._socket.ack(envelope_id, timeout)

    def socket_connected(self, timeout: float = 10) -> None:
        """Wait until a Socket Mode client is connected."""
        self._socket.wait_connected(timeout)


class _SocketHub:
    """The Socket Mode websocket side: one connection at a time, envelopes out, acks in."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._socket: WebSocket | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._acks: dict[str, dict[str, Any]] = {}

    async def serve(self, websocket: WebSocket, app_id: str) -> None:
        with self._cond:
            self._socket, self._loop = websocket, asyncio.get_running_loop()
            self._cond.notify_all()
        hello = {"type": "hello", "num_connections": 1, "connection_info": {"app_id": app_id},
                 "debug_info": {"host": "emulator", "approximate_connection_time": 3600}}
        await websocket.send_text(json.dumps(hello))
        try:
            while True:
                message = json.loads(await websocket.receive_text())
                if isinstance(message, dict) and "envelope_id" in message:
                    with self._cond:
                        self._acks[message["envelope_id"]] = message
                        self._cond.notify_all()
        except (WebSocketDisconnect, json.JSONDecodeError):
            pass
        finally:
            with self._cond:
                if self._socket is websocket:
                    self._socket = None
                self._cond.notify_all()

    def _wait(self, ready: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        with self._cond:
            while not ready():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"no {what} within {timeout}s")
                self._cond.wait(remaining)

    def wait_connected(self, timeout: float) -> None:
        self._wait(lambda: self._socket is not None, timeout, "Socket Mode connection")

    def send(self, envelope_type: str, payload: dict[str, Any], accepts_response_payload: bool) -> str:
        self.wait_connected(10)
        envelope_id = secrets.token_hex(8)
        envelope = {"envelope_id": envelope_id, "type": envelope_type, "payload": payload,
                    "accepts_response_payload": accepts_response_payload, "retry_attempt": 0, "retry_reason": ""}
        with self._cond:
            socket, loop = self._socket, self._loop
        assert socket is not None and loop is not None
        asyncio.run_coroutine_threadsafe(socket.send_text(json.dumps(envelope)), loop).result(timeout=10)
        return envelope_id

    def ack(self, envelope_id: str, timeout: float) -> dict[str, Any]:
        self._wait(lambda: envelope_id in self._acks, timeout, f"ack for envelope {envelope_id}")
        with self._cond:
            return self._acks[envelope_id]

    def close_all(self) -> None:
        with self._cond:
            socket, loop = self._socket, self._loop
        if socket is not None and loop is not None and loop.is_running():
            future = asyncio.run_coroutine_threadsafe(socket.close(), loop)
            with contextlib.suppress(Exception):  # the connection may already be gone
                future.result(timeout=5)


async def _parse_args(request: Request) -> dict[str, Any]:
    """Query string plus a JSON, urlencoded or multipart body; JSON-in-form fields decoded."""
    args: dict[str, Any] = dict(request.query_params)
    content_type = request.headers.get("content-type", "")
    body = await request.body()
    if "application/json" in content_type:
        try:
            parsed = json.loads(body or b"{}")
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise _Fail("invalid_json") from None
        if not isinstance(parsed, dict):
            raise _Fail("invalid_json")
        args.update(parsed)
    elif content_type.startswith("multipart/form-data"):
        form = await request.form()
        args.update({k: v for k, v in form.items() if isinstance(v, str)})
    elif body:
        try:
            args.update(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
        except UnicodeDecodeError:
            raise _Fail("invalid_form_data") from None
    for key in _JSON_FIELDS:
        if isinstance(args.get(key), str):
            try:
                args[key] = json.loads(args[key])
            except json.JSONDecodeError:
                raise _Fail("invalid_blocks_format" if key == "blocks" else "invalid_arguments") from None
    return args


__all__ = [
    "ApiCall", "EphemeralMessage", "MessageVersion", "PostedMessage", "RateLimit", "SlackEmulator",
    "UploadedFile", "UserProfile",
]
