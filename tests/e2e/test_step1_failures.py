"""Step 1 failures through `connect-dynamics serve`: inline format errors that sign nothing in, a
checklist that names the failing line and its fix, the way back to a refilled form, secrets that
never leak (Slack, the serve log, Redis); and bad input that never earns a 5xx."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
import redis

from bot.dynamics.preflight import CHECK_NAMES
from bot.views import ids
from bot.web import MAX_BODY_BYTES
from sandbox.driver import SlackDriver
from sandbox.dynamics import EmulatedApp, EmulatedUser
from sandbox.polling import wait_for
from sandbox.stack import ADMIN, SYNC_PASSWORD, SYNC_USER, Stack
from tests.support.listener import listener
from tests.support.processes import WebProcess

WRONG_PASSWORD = "Wr0ng-pa55-e2e-7c1f"
CLIENT_ID = "0a1b2c3d-1234-5678-9abc-def012345678"
CLIENT_SECRET = "cl1ent-secret-e2e-93ad"
MFA_USER = "mfa@contoso.com"
LOCKED_USER = "locked@contoso.com"
NO_ROLE_USER = "norole@contoso.com"
OTHER_PASSWORD = "0ther-Passw0rd-e2e-4b2e"


@pytest.fixture
def stack_options() -> dict:
    users = [
        EmulatedUser(username=SYNC_USER, password=SYNC_PASSWORD),
        EmulatedUser(username=MFA_USER, password=OTHER_PASSWORD, mfa=True),
        EmulatedUser(username=LOCKED_USER, password=OTHER_PASSWORD, locked=True),
        EmulatedUser(username=NO_ROLE_USER, password=OTHER_PASSWORD, roles=[]),
    ]
    apps = [EmulatedApp(client_id=CLIENT_ID, secret=CLIENT_SECRET)]
    return {"leads": 20, "contacts": 10, "accounts": 5, "dynamics": {"users": users, "apps": apps}}


# -- helpers ---------------------------------------------------------------------------------------------


def _open_step1(driver: SlackDriver, stack: Stack) -> str:
    assert driver.command(ADMIN).status == 200
    return stack.slack.wait_for("views.open", timeout=10).response["view"]["id"]


def _form(username: str, password: str, url: str, client_id: str = "", secret: str = "") -> dict[str, Any]:
    typed = {
        (ids.USERNAME_BLOCK, ids.USERNAME_ACTION): username,
        (ids.PASSWORD_BLOCK, ids.PASSWORD_ACTION): password,
        (ids.URL_BLOCK, ids.URL_ACTION): url,
        (ids.CLIENT_ID_BLOCK, ids.CLIENT_ID_ACTION): client_id,
        (ids.CLIENT_SECRET_BLOCK, ids.CLIENT_SECRET_ACTION): secret,
    }
    return {block: {action: {"type": "plain_text_input", "value": value}} for (block, action), value in typed.items()}


def _wait_view(stack: Stack, view_id: str, callback_id: str) -> dict[str, Any]:
    return wait_for(lambda: (v := stack.slack.view(view_id))["callback_id"] == callback_id and v,
                      timeout=30, what=f"the modal to become {callback_id}")


def _submit_and_get_checklist(driver: SlackDriver, stack: Stack, view_id: str, form: dict) -> dict[str, Any]:
    response = driver.view_submission(ADMIN, stack.slack.view(view_id), form)
    assert response.status == 200 and response.json["response_action"] == "update", response.text
    return _wait_view(stack, view_id, ids.CHECKLIST_CALLBACK)


def _lines(view: dict[str, Any]) -> dict[str, str]:
    """Checklist line text by check name (the bold part of each `:x:` / `:white_check_mark:` section)."""
    lines = {}
    for block in view["blocks"]:
        text = (block.get("text") or {}).get("text", "")
        if block["type"] == "section" and text.startswith((":x: *", ":white_check_mark: *")) and "*" in text[5:]:
            name = text.split("*", 2)[1]
            if not name.startswith(("All checks", "Some checks")):
                lines[name] = text
    return lines


def _input_values(view: dict[str, Any]) -> dict[str, str | None]:
    return {block["block_id"]: block["element"].get("initial_value")
            for block in view["blocks"] if block["type"] == "input"}


def _back_to_form(driver: SlackDriver, stack: Stack, view_id: str) -> dict[str, Any]:
    checklist = stack.slack.view(view_id)
    response = driver.block_action(ADMIN, ids.BACK_TO_FORM_ACTION, view=checklist)
    assert response.status == 200
    return _wait_view(stack, view_id, ids.CREDENTIALS_CALLBACK)


def _redis_bytes(client: redis.Redis, prefix: str) -> bytes:
    """Every value stored under the test's prefix (and its RQ keys), whatever the Redis type."""
    chunks: list[bytes] = []
    for pattern in (f"{prefix}:*", f"rq:*{prefix}*"):
        for key in client.scan_iter(match=pattern, count=1000):
            kind = client.type(key).decode()
            if kind == "string":
                chunks.append(client.get(key) or b"")
            elif kind == "hash":
                chunks += [b for pair in client.hgetall(key).items() for b in pair]
            elif kind == "list":
                chunks += client.lrange(key, 0, -1)
            elif kind == "set":
                chunks += list(client.smembers(key))
            elif kind == "zset":
                chunks += [member for member, _ in client.zrange(key, 0, -1, withscores=True)]
            elif kind == "stream":
                chunks += [repr(entry).encode() for entry in client.xrange(key)]
            chunks.append(key)
    return b"\n".join(chunks)


def _assert_never_leaked(secrets: list[str], stack: Stack, web: WebProcess, client: redis.Redis, prefix: str) -> None:
    slack_calls = json.dumps([c.args for c in stack.slack.calls()] + [c.response for c in stack.slack.calls()])
    log = web.output()
    stored = _redis_bytes(client, prefix)
    assert stored, "the test should have written something to Redis"
    for secret in secrets:
        assert secret not in slack_calls, "a secret reached Slack"
        assert secret not in log, "a secret is in the serve log"
        assert secret.encode() not in stored, "a secret is in Redis in clear"


# -- format errors: inline, and nothing signed in ------------------------------------------------------


def test_format_errors_are_inline_and_sign_nothing_in(driver: SlackDriver, stack: Stack) -> None:
    view_id = _open_step1(driver, stack)
    url = stack.dynamics.url
    cases = [
        (_form("CONTOSO\\sync", SYNC_PASSWORD, url), {ids.USERNAME_BLOCK: "DOMAIN\\user"}),
        (_form(SYNC_USER, SYNC_PASSWORD, url.replace("https://", "http://")), {ids.URL_BLOCK: "https://"}),
        (_form(SYNC_USER, SYNC_PASSWORD, url, client_id=CLIENT_ID), {ids.CLIENT_SECRET_BLOCK: "Client Secret"}),
    ]
    for form, expected in cases:
        response = driver.view_submission(ADMIN, stack.slack.view(view_id), form)
        assert response.status == 200
        assert response.elapsed < 3.0
        assert response.json["response_action"] == "errors", response.text
        errors = response.json["errors"]
        assert set(errors) == set(expected), errors
        for block, phrase in expected.items():
            assert phrase in errors[block], errors[block]
    assert stack.slack.view(view_id)["callback_id"] == ids.CREDENTIALS_CALLBACK, "errors keep the form open"
    assert not stack.slack.calls("views.update")
    assert (stack.dynamics.token_requests, stack.dynamics.tokens_issued, stack.dynamics.requests) == (0, 0, 0)


def test_a_url_into_the_servers_own_network_is_refused_inline_and_sent_nothing(driver: SlackDriver, stack: Stack) -> None:
    """The stack allowlists the emulator's host:port only: the same server under another name, and the
    allowlisted host on another port, resolve to loopback and are refused at submit."""
    view_id = _open_step1(driver, stack)
    port = stack.dynamics.port
    with listener() as elsewhere:
        for url in (f"https://127.0.0.1:{port}", f"https://2130706433:{port}", f"https://[::ffff:127.0.0.1]:{port}",
                    f"https://localhost:{elsewhere.port}", f"https://127.0.0.1:{elsewhere.port}"):
            response = driver.view_submission(ADMIN, stack.slack.view(view_id), _form(SYNC_USER, SYNC_PASSWORD, url))
            assert response.status == 200 and response.elapsed < 3.0
            assert response.json["response_action"] == "errors", response.text
            error = response.json["errors"][ids.URL_BLOCK]
            assert "resolves to a loopback address" in error and "DYNAMICS_HOST_ALLOWLIST" in error, error
        assert elsewhere.requests == []
    assert not stack.slack.calls("views.update")
    assert (stack.dynamics.token_requests, stack.dynamics.requests) == (0, 0)


# -- sign-in failures: the specific line, its fix, and the way back --------------------------------------


SIGN_IN_FAILURES = [
    pytest.param(MFA_USER, OTHER_PASSWORD, ("multi-factor", "AADSTS50076"), "exclude it from the MFA", id="mfa"),
    pytest.param(LOCKED_USER, OTHER_PASSWORD, ("locked", "AADSTS50053"), "unlock", id="locked"),
]


@pytest.mark.parametrize(("username", "password", "problem", "fix"), SIGN_IN_FAILURES)
def test_sign_in_failure_names_the_line_and_its_fix(
    driver: SlackDriver, stack: Stack, web: WebProcess, redis_client: redis.Redis, key_prefix: str,
    username: str, password: str, problem: tuple[str, ...], fix: str,
) -> None:
    view_id = _open_step1(driver, stack)
    checklist = _submit_and_get_checklist(driver, stack, view_id, _form(username, password, stack.dynamics.url))
    assert not checklist.get("submit"), "a failed checklist cannot continue"
    lines = _lines(checklist)
    assert lines["Dynamics URL reachable"].startswith(":white_check_mark:")
    credentials = lines["Credentials valid"]
    assert credentials.startswith(":x:")
    for phrase in (*problem, "_Fix:_", fix):
        assert phrase in credentials, credentials
    assert all("not checked" in text for name, text in lines.items()
               if name not in {"Dynamics URL reachable", "Credentials valid"})
    back = [e for b in checklist["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert [e["text"]["text"] for e in back] == ["Back to the form"]

    form = _back_to_form(driver, stack, view_id)
    assert _input_values(form) == {
        ids.USERNAME_BLOCK: username, ids.PASSWORD_BLOCK: None, ids.URL_BLOCK: stack.dynamics.url,
        ids.CLIENT_ID_BLOCK: None, ids.CLIENT_SECRET_BLOCK: None,
    }
    _assert_never_leaked([password], stack, web, redis_client, key_prefix)


def test_wrong_password_then_right_one_keeps_secrets_out_of_slack_logs_and_redis(
    driver: SlackDriver, stack: Stack, web: WebProcess, redis_client: redis.Redis, key_prefix: str,
) -> None:
    """Confidential client (Client ID + Secret + password): a wrong password fails only sign-in;
    the form comes back without password and secret; the right ones pass and are stored encrypted."""
    url = stack.dynamics.url
    view_id = _open_step1(driver, stack)
    wrong = _form(SYNC_USER, WRONG_PASSWORD, url, client_id=CLIENT_ID, secret=CLIENT_SECRET)
    lines = _lines(_submit_and_get_checklist(driver, stack, view_id, wrong))
    assert "password is wrong" in lines["Credentials valid"] and "AADSTS50126" in lines["Credentials valid"]
    assert "Caps Lock" in lines["Credentials valid"]

    form = _back_to_form(driver, stack, view_id)
    assert _input_values(form) == {
        ids.USERNAME_BLOCK: SYNC_USER, ids.PASSWORD_BLOCK: None, ids.URL_BLOCK: url,
        ids.CLIENT_ID_BLOCK: CLIENT_ID, ids.CLIENT_SECRET_BLOCK: None,
    }
    right = _form(SYNC_USER, SYNC_PASSWORD, url, client_id=CLIENT_ID, secret=CLIENT_SECRET)
    checklist = _submit_and_get_checklist(driver, stack, view_id, right)
    assert checklist.get("submit"), _lines(checklist)
    assert all(text.startswith(":white_check_mark:") for text in _lines(checklist).values())
    assert "username, password and client secret" in _lines(checklist)["Credentials valid"]
    _assert_never_leaked([WRONG_PASSWORD, SYNC_PASSWORD, CLIENT_SECRET], stack, web, redis_client, key_prefix)


def test_sync_user_without_the_role_fails_only_that_line(driver: SlackDriver, stack: Stack) -> None:
    view_id = _open_step1(driver, stack)
    checklist = _submit_and_get_checklist(driver, stack, view_id, _form(NO_ROLE_USER, OTHER_PASSWORD, stack.dynamics.url))
    lines = _lines(checklist)
    failed = {name for name, text in lines.items() if not text.startswith(":white_check_mark:")}
    assert failed == {"Sync user has the Marketo Sync User role"}, lines
    assert "Manage Roles" in lines["Sync user has the Marketo Sync User role"]
    assert len(lines) == len(CHECK_NAMES)
    assert not checklist.get("submit")


# -- bad input over HTTP: acked or refused, never a 5xx ---------------------------------------------------


def _signed_json(driver: SlackDriver, body: bytes) -> int:
    return driver.raw(body, driver.signed_headers(body, content_type="application/json")).status


def test_bad_input_is_acked_or_refused_never_5xx(driver: SlackDriver, stack: Stack, web: WebProcess) -> None:
    stale_view = {"id": "V0UNKNOWN1", "type": "modal", "callback_id": "cd_from_an_older_version"}
    response = driver.view_submission(ADMIN, stale_view, {})
    assert response.status == 200
    assert response.json["response_action"] == "update"
    assert "no longer valid" in json.dumps(response.json["view"])
    untyped_view = {key: value for key, value in stale_view.items() if key != "type"}
    assert driver.view_submission(ADMIN, untyped_view, {}).status == 400

    answer = driver.block_suggestion(ADMIN, "cd_unknown_select", "abc")
    assert (answer.status, answer.json) == (200, {"options": []})

    field_search_without_view = driver.block_suggestion(ADMIN, "cd_fields_select_lead", "job")
    assert (field_search_without_view.status, field_search_without_view.json) == (200, {"options": []})

    view_id = _open_step1(driver, stack)
    garbled = driver.view_submission(ADMIN, stack.slack.view(view_id), {ids.USERNAME_BLOCK: "not-an-object"})
    assert garbled.status == 400, garbled.text

    for body in (b'{"hello": "world"}', b"[1, 2, 3]", b'"just a string"', b'{"type": "event_callback", "event": 7}',
                 b"{not json"):
        status = _signed_json(driver, body)
        assert 400 <= status < 500, (body, status)
    not_a_payload = urlencode({"payload": json.dumps({"type": "something_else", "user": {"id": ADMIN}})}).encode()
    assert driver.send(not_a_payload).status == 400

    oversized = urlencode({"payload": json.dumps({"type": "block_actions", "pad": "x" * MAX_BODY_BYTES})}).encode()
    assert driver.send(oversized).status == 413

    assert httpx.get(f"{web.url}/readyz").json() == {"ok": True, "redis": "ok", "settings": "ok"}
    metrics = httpx.get(f"{web.url}/metrics").text
    assert 'outcome="error"' not in metrics, metrics
    assert driver.command(ADMIN).status == 200
    wait_for(lambda: len(stack.slack.calls("views.open")) == 2, what="a second Step 1 modal after the bad input")
    assert "Traceback" not in web.output()
