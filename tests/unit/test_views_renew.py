"""The new-credentials form asks for the secrets the connection uses, and carries ids only."""

from __future__ import annotations

import json

import pytest

from bot.models import Connection, FlowState
from bot.views import ids
from bot.views.renew import Asked, renew_credentials_modal

CONNECTION = Connection(team_id="T1", requester="U1", state=FlowState.synced, username="sync@contoso.com",
                        dynamics_url="https://contoso.crm.dynamics.com")


def inputs(asked: Asked) -> dict[str, bool]:
    """Input block id -> optional."""
    view = renew_credentials_modal(CONNECTION, asked).to_dict()
    return {block["block_id"]: block.get("optional", False) for block in view["blocks"] if block["type"] == "input"}


@pytest.mark.parametrize(("asked", "expected"), [
    (Asked(), {ids.URL_BLOCK: False, ids.PASSWORD_BLOCK: False}),
    (Asked(client_secret=True), {ids.URL_BLOCK: False, ids.PASSWORD_BLOCK: False, ids.CLIENT_SECRET_BLOCK: False}),
    (Asked(password=False, client_secret=True), {ids.URL_BLOCK: False, ids.CLIENT_SECRET_BLOCK: False}),
    (Asked(unknown=True), {ids.URL_BLOCK: False, ids.PASSWORD_BLOCK: True, ids.CLIENT_ID_BLOCK: True,
                           ids.CLIENT_SECRET_BLOCK: True}),
])
def test_the_form_asks_what_the_connection_uses(asked: Asked, expected: dict[str, bool]) -> None:
    assert inputs(asked) == expected


def test_the_org_and_sync_user_are_shown_and_the_metadata_holds_the_connection_id_only() -> None:
    view = renew_credentials_modal(CONNECTION, Asked()).to_dict()
    shown = json.dumps(view["blocks"])
    assert "sync@contoso.com" in shown and "https://contoso.crm.dynamics.com" in shown
    assert json.loads(view["private_metadata"]) == {"connection_id": CONNECTION.id}
    assert view["callback_id"] == ids.RENEW_CALLBACK and len(view["title"]["text"]) <= 24
