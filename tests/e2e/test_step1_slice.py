"""The first slice, over real HTTP into `connect-dynamics serve`: /connect-dynamics opens Step 1."""

from __future__ import annotations

import json
import time
from urllib.parse import urlencode

from bot.sandbox.driver import SlackDriver
from bot.sandbox.polling import wait_for
from bot.sandbox.stack import ADMIN, LEADS, Stack

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


def test_healthz_reports_redis(web) -> None:  # noqa: ANN001
    import httpx

    body = httpx.get(f"{web.url}/healthz").json()
    assert body == {"ok": True, "redis": "ok"}
