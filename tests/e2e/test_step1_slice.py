"""The first slice, over real HTTP into `connect-dynamics serve`: /connect-dynamics opens Step 1."""

from __future__ import annotations

import json
import time
from urllib.parse import urlencode

from sandbox.driver import SlackDriver
from sandbox.polling import wait_for
from sandbox.stack import ADMIN, LEADS, Stack

STEP1_LABELS = {"Username", "Password", "Dynamics URL", "Client ID", "Client Secret"}


def _labels(view: dict) -> set[str]:
    return {block["label"]["text"] for block in view["blocks"] if block["type"] == "input"}


def test_admin_command_opens_the_step1_modal(driver: SlackDriver, stack: Stack) -> None:
    response = driver.command(ADMIN)
    assert response.status == 200
    assert response.elapsed < 3.0
    call = stack.slack.wait_for("views.open", timeout=10)
    assert call.ok
    view = call.args["view"]
    view = json.loads(view) if isinstance(view, str) else view
    assert _labels(view) == STEP1_LABELS
    assert "password" not in (view.get("private_metadata") or "").lower()


def test_non_admin_gets_an_ephemeral_and_no_modal(driver: SlackDriver, stack: Stack) -> None:
    response = driver.command(LEADS[0])
    assert response.status == 200
    assert "admin" in response.text.lower()
    assert not stack.slack.calls("views.open")


def test_bad_signature_is_401_and_changes_nothing(driver: SlackDriver, stack: Stack) -> None:
    body = urlencode({"command": "/connect-dynamics", "team_id": "T0001", "user_id": ADMIN,
                      "trigger_id": stack.slack.new_trigger_id(ADMIN)}).encode()
    headers = driver.signed_headers(body)
    headers["X-Slack-Signature"] = "v0=" + "0" * 64
    assert driver.raw(body, headers).status == 401
    stale = driver.signed_headers(body, timestamp=int(time.time()) - 600)
    assert driver.raw(body, stale).status == 401
    assert driver.raw(body, {}).status == 401
    assert not stack.slack.calls("views.open")


def test_malformed_bodies_get_4xx_never_5xx(driver: SlackDriver) -> None:
    bodies = [
        bytes(range(256)),
        b"payload=null",
        b"payload=%7B%22type%22%3A%22view_submission%22%2C%22view%22%3Anull%7D",
        b"payload=not-json",
        urlencode({"payload": json.dumps({"type": "block_actions", "actions": []})}).encode(),
        b"",
    ]
    for body in bodies:
        status = driver.send(body).status
        assert 400 <= status < 500, (body[:40], status)


def test_unknown_button_is_acked_and_explained(driver: SlackDriver, stack: Stack) -> None:
    response = driver.block_action(ADMIN, "cd_from_an_older_version", value="x", channel="C0001")
    assert response.status == 200
    wait_for(lambda: stack.slack.ephemeral(ADMIN), what="an ephemeral 'no longer valid'")
    assert "no longer valid" in stack.slack.ephemeral(ADMIN)[-1].text


def test_unknown_subcommand_gets_help(driver: SlackDriver) -> None:
    response = driver.command(ADMIN, text="frobnicate")
    assert response.status == 200
    assert "frobnicate" in response.text and "status" in response.text


def test_the_probes_of_serve(web) -> None:  # noqa: ANN001
    import httpx

    assert httpx.get(f"{web.url}/livez").json() == {"ok": True}
    for path in ("/readyz", "/healthz"):
        assert httpx.get(f"{web.url}{path}").json() == {"ok": True, "redis": "ok", "settings": "ok"}, path


def test_app_home_shows_status_and_its_buttons_work(driver: SlackDriver, stack: Stack) -> None:
    event = {"type": "event_callback", "team_id": "T0001", "api_app_id": "A0001", "event_id": "Ev1",
             "event_time": int(time.time()),
             "event": {"type": "app_home_opened", "user": ADMIN, "channel": "D0HOME", "tab": "home"}}
    body = json.dumps(event).encode()
    assert driver.raw(body, driver.signed_headers(body, content_type="application/json")).status == 200
    home = wait_for(lambda: stack.slack.home(ADMIN), what="the App Home view")
    buttons = [e for b in home["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert {b["action_id"] for b in buttons} >= {"cd_home_connect", "cd_home_help"}

    assert driver.block_action(LEADS[0], "cd_home_connect", view=home).status == 200
    wait_for(lambda: stack.slack.calls("chat.postMessage") or stack.slack.ephemeral(LEADS[0]),
             what="the refusal for a non-admin")
    assert not stack.slack.calls("views.open")
    driver.block_action(ADMIN, "cd_home_connect", view=home)
    opened = stack.slack.wait_for("views.open", timeout=10)
    assert _labels(opened.response["view"]) == STEP1_LABELS
    driver.block_action(ADMIN, "cd_home_help", view=home)
    dm = stack.slack.dm_channel(ADMIN)
    wait_for(lambda: any("/connect-dynamics status" in m.text for m in stack.slack.messages(dm)), what="help by DM")
