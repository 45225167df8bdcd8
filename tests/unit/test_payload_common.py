"""Every payload from a person answers the same questions: team, user, channel, modal."""

from __future__ import annotations

import pytest
from pydantic import BaseModel

from bot.slack_payloads import ActionPayload, SlashCommand, SuggestionPayload, ViewPayload

PERSON = {"team": {"id": "T1"}, "user": {"id": "U1"}}
VIEW = {"id": "V1", "type": "modal", "callback_id": "cd_fields"}


@pytest.mark.parametrize(("payload", "channel", "view_id"), [
    (SlashCommand(command="/connect-dynamics", team_id="T1", user_id="U1", channel_id="C1"), "C1", None),
    (ActionPayload.model_validate({**PERSON, "type": "block_actions", "actions": [{"action_id": "a"}],
                                   "channel": {"id": "C1"}}), "C1", None),
    (ActionPayload.model_validate({**PERSON, "type": "block_actions", "actions": [{"action_id": "a"}],
                                   "view": VIEW}), "", "V1"),
    (ViewPayload.model_validate({**PERSON, "type": "view_submission", "view": VIEW}), "", "V1"),
    (SuggestionPayload.model_validate({**PERSON, "type": "block_suggestion", "action_id": "a"}), "", None),
], ids=["command", "message button", "modal button", "submission", "suggestion"])
def test_common_properties(payload: BaseModel, channel: str, view_id: str | None) -> None:
    assert (payload.team_id, payload.user_id, payload.channel_id) == ("T1", "U1", channel)
    assert (payload.view.id if payload.view else None) == view_id


def test_a_stray_top_level_team_id_does_not_override_the_team_object() -> None:
    payload = ActionPayload.model_validate({**PERSON, "team_id": "T0FORGED", "type": "block_actions",
                                            "actions": [{"action_id": "a"}]})
    assert payload.team_id == "T1"
