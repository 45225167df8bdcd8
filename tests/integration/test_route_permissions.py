"""Each route's permission is enforced in one place, before its handler runs: the real routes in a
Bolt app in process, over real Redis (no Slack call is needed for these answers, so none is made:
the app is authorized without calling auth.test)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import pytest
import redis
from slack_bolt import App, BoltRequest
from slack_bolt.authorization import AuthorizeResult

from bot.config import Settings
from bot.container import Container
from bot.models import AttributeMeta, Entity, EntityMetadata, FlowState
from bot.roles import CONTROL, READ_AUDIT
from bot.views import ids
from handlers.router import register
from tests.support.connections import at_confirm

TEAM = "T1"
ADMIN = "UADMIN"
LEAD = "ULEAD"


@pytest.fixture
def container(redis_client: redis.Redis, key_prefix: str, encryption_key: str) -> Iterator[Container]:
    settings = Settings(ENCRYPTION_KEY=encryption_key, REDIS_KEY_PREFIX=key_prefix,
                        ADMIN_USER_IDS=ADMIN, TEAM_LEAD_USER_IDS=LEAD, SLACK_API_URL="http://127.0.0.1:9/api/")
    running = Container(settings, redis_client)
    yield running
    running.background.shutdown()


@pytest.fixture
def app(container: Container) -> App:
    def authorize(**_: Any) -> AuthorizeResult:
        return AuthorizeResult(enterprise_id=None, team_id=TEAM, bot_token="xoxb-test", bot_user_id="UBOT")

    bolt = App(signing_secret="unused", authorize=authorize, request_verification_enabled=False,
               process_before_response=True)
    register(bolt, container)
    return bolt


def send(app: App, body: str) -> tuple[int, Any]:
    response = app.dispatch(BoltRequest(body=body, headers={"content-type": ["application/x-www-form-urlencoded"]}))
    return response.status, json.loads(response.body) if response.body.startswith("{") else response.body


def command(app: App, user: str, text: str) -> tuple[int, Any]:
    return send(app, urlencode({"command": "/connect-dynamics", "text": text, "team_id": TEAM, "user_id": user,
                                "channel_id": "C1", "trigger_id": "t1"}))


def interactive(app: App, payload: dict[str, Any]) -> tuple[int, Any]:
    base = {"team": {"id": TEAM}, "user": {"id": payload.pop("user")}}
    return send(app, urlencode({"payload": json.dumps(base | payload)}))


def test_a_refused_subcommand_says_what_was_refused(app: App) -> None:
    assert command(app, LEAD, "audit") == (200, READ_AUDIT.refusal)
    assert command(app, LEAD, "cancel") == (200, CONTROL.refusal)
    status, answer = command(app, ADMIN, "audit")
    assert status == 200 and answer["text"] == "Recent audit log"


def test_anyone_may_ask_for_help_and_status(app: App) -> None:
    assert "/connect-dynamics" in command(app, "UNOBODY", "help")[1]
    assert command(app, "UNOBODY", "status")[1]["text"] == "connect-dynamics status"


def test_a_non_admin_submitting_step3_is_refused_before_anything_is_written(app: App, container: Container) -> None:
    connection = at_confirm(container.store, TEAM, ADMIN)
    view = {"id": "V1", "type": "modal", "callback_id": ids.ENABLE_SYNC_CALLBACK,
            "private_metadata": json.dumps({"connection_id": connection.id}),
            "state": {"values": {ids.NOTIFY_EMAIL_BLOCK: {ids.NOTIFY_EMAIL_ACTION: {
                "type": "plain_text_input", "value": "ops@example.com"}}}}}
    status, answer = interactive(app, {"type": "view_submission", "user": LEAD, "view": view})
    assert status == 200 and answer["response_action"] == "update"
    assert "Only Marketo admins" in json.dumps(answer["view"])
    stored = container.store.get_connection(TEAM, connection.id)
    assert stored.state == FlowState.confirm and stored.notify_email is None


class OneLeadAttribute:
    """A metadata source for the cache: the lead entity with a first name."""

    def entity_metadata(self, entity: Entity | str) -> EntityMetadata:
        return EntityMetadata(entity=Entity.lead, entity_set="leads", primary_id="leadid", attributes=[
            AttributeMeta(logical_name="firstname", display_name="First Name", attribute_type="StringType")])


def test_field_search_is_served_to_admins_only(app: App, container: Container) -> None:
    connection = at_confirm(container.store, TEAM, ADMIN)
    container.metadata.get(TEAM, connection.id, OneLeadAttribute(), Entity.lead)
    payload = {"type": "block_suggestion", "action_id": ids.fields_action_id(Entity.lead), "value": "first",
               "view": {"id": "V1", "type": "modal", "private_metadata": json.dumps({"connection_id": connection.id})}}
    status, answer = interactive(app, {**payload, "user": ADMIN})
    assert status == 200 and [o["value"] for o in answer["options"]] == ["firstname"]
    assert interactive(app, {**payload, "user": "UNOBODY"}) == (200, {"options": []})
