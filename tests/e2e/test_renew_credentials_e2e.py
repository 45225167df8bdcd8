"""New credentials for the connected org, end to end: the sync user's password changes in Dynamics
after the initial sync; `/connect-dynamics credentials` refuses the old password (pre-flight), another
organization (by OrganizationId) and accepts the new password under another spelling of the same
org's URL; the next incremental cycle then runs in the worker. Signed requests into
`connect-dynamics serve`, a `connect-dynamics worker`, real Redis, the emulators over loopback."""

from __future__ import annotations

import json
from urllib.parse import urlsplit

import pytest

from bot.crypto import SecretBox
from bot.models import FlowState
from bot.store import Store
from bot.views import ids
from sandbox.driver import SlackDriver
from sandbox.polling import wait_for
from sandbox.stack import ADMIN, LEADS, SYNC_PASSWORD, SYNC_USER, Stack
from sandbox.story import Story
from tests.conftest import REDIS_URL
from tests.e2e.test_approvals_e2e import audit_actions, connection

pytestmark = pytest.mark.e2e

NEW_PASSWORD = "N3w-Passw0rd!"
OTHER_ORG = "0f0f0f0f-0000-4000-8000-000000000001"


@pytest.fixture
def stack_options() -> dict:
    return {"leads": 40, "contacts": 20, "accounts": 10}


@pytest.fixture
def bot_env(stack: Stack, key_prefix: str) -> dict[str, str]:
    """Incremental cycles an hour apart: the one after the renewal runs because the renewal made it due."""
    port = urlsplit(stack.dynamics.url).port
    return stack.env(REDIS_URL=REDIS_URL, REDIS_KEY_PREFIX=key_prefix, INCREMENTAL_SYNC_MINUTES="60",
                     SYNC_SWEEP_SECONDS="0.2", DYNAMICS_HOST_ALLOWLIST=f"localhost:{port},127.0.0.1:{port}")


def open_form(driver: SlackDriver, stack: Stack) -> dict:
    opened = len(stack.slack.calls("views.open"))
    assert driver.command(ADMIN, text="credentials").status == 200
    call = wait_for(lambda: stack.slack.calls("views.open")[opened:], what="the credentials form")[0]
    assert call.ok
    return stack.slack.view(call.response["view"]["id"])


def submit(driver: SlackDriver, stack: Stack, form: dict, url: str, password: str, expect: str) -> dict:
    """Submit the form and wait for the view the check ends with (it contains `expect`)."""
    response = driver.view_submission(ADMIN, form, {
        ids.URL_BLOCK: {ids.URL_ACTION: {"type": "plain_text_input", "value": url}},
        ids.PASSWORD_BLOCK: {ids.PASSWORD_ACTION: {"type": "plain_text_input", "value": password}},
    })
    assert response.status == 200
    return wait_for(lambda: (v := stack.slack.view(form["id"])) and v["callback_id"] != ids.CHECKING_CALLBACK
                    and expect in json.dumps(v["blocks"]) and v, what=f"the check to say {expect!r}", timeout=60)


def test_new_password_is_checked_saved_and_the_sync_goes_on(driver: SlackDriver, worker, stack: Stack,  # noqa: ANN001
                                                            store: Store) -> None:
    story = Story(driver, stack.slack, stack.dynamics.url)
    story.request_and_approve()
    story.completion(timeout=120)
    wait_for(lambda: connection(store).state == FlowState.synced, what="the connection to be synced")
    contact_id = stack.dynamics.record_id("contact", 1)
    stack.dynamics.change_password(SYNC_USER, NEW_PASSWORD)
    stack.dynamics.update_record("contact", 1, firstname="Renewed")

    refused = driver.command(LEADS[0], text="credentials")
    assert "only marketo admins" in refused.text.lower()

    form = open_form(driver, stack)
    assert form["callback_id"] == ids.RENEW_CALLBACK
    assert SYNC_USER in json.dumps(form["blocks"]) and ids.CLIENT_SECRET_BLOCK not in json.dumps(form["blocks"])
    blank = driver.view_submission(ADMIN, form, {ids.URL_BLOCK: {ids.URL_ACTION: {
        "type": "plain_text_input", "value": stack.dynamics.url}}})
    assert blank.json["response_action"] == "errors" and ids.PASSWORD_BLOCK in blank.json["errors"]

    failed = submit(driver, stack, form, stack.dynamics.url, SYNC_PASSWORD, "did not pass")
    assert "Credentials valid" in json.dumps(failed["blocks"])
    assert failed["callback_id"] == ids.RENEW_CALLBACK, "the form again, to type the password once more"

    stack.dynamics.organization_id, own_org = OTHER_ORG, stack.dynamics.organization_id
    other = submit(driver, stack, failed, stack.dynamics.url, NEW_PASSWORD, "another Dynamics organization")
    stack.dynamics.organization_id = own_org
    assert not audit_actions(store, "credentials_renewed")

    same_org = stack.dynamics.url.replace("://localhost:", "://127.0.0.1:")
    done = submit(driver, stack, other, same_org, NEW_PASSWORD, "are saved")
    assert "incremental sync runs now" in json.dumps(done["blocks"])
    assert audit_actions(store, "credentials_renewed") == [ADMIN]

    conn = connection(store)
    assert conn.dynamics_url == stack.dynamics.url, "the connection keeps the URL its sync and lock use"
    sealed = store.redis.get(store.keys.credentials(conn.team_id, conn.id))
    assert NEW_PASSWORD.encode() not in sealed
    saved = Store(store.redis, SecretBox(stack.encryption_key), prefix=store.prefix).load_credentials(
        conn.team_id, conn.id)
    assert saved.password.get_secret_value() == NEW_PASSWORD and saved.url == stack.dynamics.url
    views = [json.dumps(call.args) for call in stack.slack.calls("views.update") + stack.slack.calls("views.open")]
    assert not [view for view in views if NEW_PASSWORD in view]

    wait_for(lambda: (stack.marketo.lead_by("dynamicsContactId", contact_id) or {}).get("firstName") == "Renewed",
             what="the next incremental cycle to bring the change to Marketo", timeout=60)
    assert connection(store).state == FlowState.synced
