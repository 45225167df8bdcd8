"""Per-workspace settings: their defaults, roles per team, the App Home section and modal, the form."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from bot.config import Settings
from bot.roles import TeamRoles
from bot.steps.workspace import SettingsForm
from bot.store import Store, TeamSettings
from bot.views import ids
from bot.views.workspace_settings import settings_blocks, settings_modal
from bot.workspace_settings import WorkspaceSettings
from sandbox.blockkit import validate_view

ENV = Settings(ADMIN_USER_IDS="U0ADMIN", TEAM_LEAD_USER_IDS="U0LEAD", APPROVAL_CHANNEL="C0APPROVE",
               NOTIFY_CHANNEL="C0NOTIFY")


def test_a_workspace_without_settings_gets_the_environment_values(store: Store) -> None:
    workspaces = WorkspaceSettings(store, ENV)
    assert workspaces.get("T1") == TeamSettings(admins=["U0ADMIN"], leads=["U0LEAD"], approval_channel="C0APPROVE",
                                                notify_channel="C0NOTIFY")
    own = TeamSettings(admins=["U0BADMIN"], leads=[], updated_by="U0BADMIN")
    workspaces.save("T2", own)
    assert workspaces.get("T2") == own and workspaces.get("T1").admins == ["U0ADMIN"]


def test_roles_are_per_team(store: Store) -> None:
    workspaces = WorkspaceSettings(store, ENV)
    workspaces.save("T2", TeamSettings(admins=["U0BADMIN"], leads=["U0BLEAD"], updated_by="U0BADMIN"))
    roles = TeamRoles(workspaces)
    assert roles.for_team("T1").is_admin("U0ADMIN") and roles.for_team("T1").is_lead("U0LEAD")
    assert not roles.for_team("T2").is_admin("U0ADMIN") and not roles.for_team("T2").is_lead("U0LEAD")
    assert roles.for_team("T2").is_admin("U0BADMIN") and roles.for_team("T2").leads == {"U0BLEAD"}


def test_the_app_home_section_says_who_and_where() -> None:
    defaults = json.dumps([b.to_dict() for b in settings_blocks(TeamSettings(admins=["U0ADMIN"]))])
    assert "<@U0ADMIN>" in defaults and "deployment's defaults" in defaults and ids.HOME_SETTINGS_ACTION in defaults
    own = json.dumps([b.to_dict() for b in settings_blocks(
        TeamSettings(leads=["U0LEAD"], approval_channel="C0APPROVE", updated_by="U0BOSS"))])
    assert "<#C0APPROVE>" in own and "<@U0LEAD>" in own and "Last changed by <@U0BOSS>" in own
    forged = json.dumps([b.to_dict() for b in settings_blocks(TeamSettings(notify_channel="C1> <!channel"))])
    assert "<!channel" not in forged and "C1&gt; &lt;!channel" in forged


def test_the_modal_starts_from_the_current_settings() -> None:
    view = settings_modal(TeamSettings(admins=["U0ADMIN"], leads=["U0LEAD"], notify_channel="C0NOTIFY")).to_dict()
    assert validate_view(view) == []
    elements = {b["block_id"]: b["element"] for b in view["blocks"] if b["type"] == "input"}
    assert elements[ids.SETTINGS_ADMINS_BLOCK]["initial_users"] == ["U0ADMIN"]
    assert elements[ids.SETTINGS_LEADS_BLOCK]["initial_users"] == ["U0LEAD"]
    assert elements[ids.SETTINGS_NOTIFY_BLOCK]["initial_conversation"] == "C0NOTIFY"
    assert "initial_conversation" not in elements[ids.SETTINGS_APPROVAL_BLOCK]
    assert view["callback_id"] == ids.SETTINGS_CALLBACK and len(view["title"]["text"]) <= 24


def _values(admins: list[str], channel: str | None) -> dict:
    return {
        ids.SETTINGS_ADMINS_BLOCK: {ids.SETTINGS_ADMINS_ACTION: {"selected_users": admins}},
        ids.SETTINGS_LEADS_BLOCK: {ids.SETTINGS_LEADS_ACTION: {"selected_users": []}},
        ids.SETTINGS_APPROVAL_BLOCK: {ids.SETTINGS_APPROVAL_ACTION: {"selected_conversation": channel}},
    }


def test_the_form_reads_ids_and_refuses_anything_else() -> None:
    form = SettingsForm.of(_values(["U0A", "U0B", "U0A"], "G0PRIVATE"))
    assert form == SettingsForm(admins=["U0A", "U0B"], approval_channel="G0PRIVATE")
    with pytest.raises(ValidationError):
        SettingsForm.of(_values(["<!channel>"], None))
    with pytest.raises(ValidationError):
        SettingsForm.of(_values(["U0A"], "C1> <!here"))
