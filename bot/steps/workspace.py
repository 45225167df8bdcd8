"""A workspace's own settings (admins, team leads, approvals and notifications channels), edited in
the App Home. Who may edit: a Slack admin or owner of that workspace (as `users.info` says), or
someone who already is a Marketo admin there — so a fresh workspace can be set up by its own
admins, and nobody from another workspace can touch it."""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, Field, field_validator
from slack_sdk import WebClient
from slack_sdk.models.views import View

from bot.errors import PermissionDenied
from bot.roles import RoleBook
from bot.steps import status
from bot.store import Store, TeamSettings
from bot.views import ids
from bot.views.workspace_settings import CHANNEL_ID, settings_blocks, settings_modal
from bot.workspace_settings import WorkspaceSettings

NOT_ALLOWED = ("Only an admin or owner of this Slack workspace, or one of its Marketo admins, "
               "can change its settings.")
USER_ID = re.compile(r"[UW][A-Z0-9]+")
SAVED = "Workspace settings saved. They apply to the next request and the next sync notice."


class SettingsForm(BaseModel):
    """What the settings modal submitted (user and channel ids, as Slack sends them)."""

    admins: list[str] = Field(default_factory=list)
    leads: list[str] = Field(default_factory=list)
    approval_channel: str | None = None
    notify_channel: str | None = None

    @field_validator("admins", "leads")
    @classmethod
    def _user_ids(cls, users: list[str]) -> list[str]:
        if not all(USER_ID.fullmatch(user) for user in users):
            raise ValueError("not a Slack user id")
        return list(dict.fromkeys(users))

    @field_validator("approval_channel", "notify_channel")
    @classmethod
    def _channel_id(cls, channel: str | None) -> str | None:
        if channel is not None and not CHANNEL_ID.fullmatch(channel):
            raise ValueError("not a Slack channel id")
        return channel

    @classmethod
    def of(cls, values: dict[str, dict[str, Any]]) -> SettingsForm:
        """From the modal's `view.state.values`."""
        def chosen(block: str, action: str, key: str) -> Any:
            return (values.get(block, {}).get(action) or {}).get(key)

        return cls(
            admins=chosen(ids.SETTINGS_ADMINS_BLOCK, ids.SETTINGS_ADMINS_ACTION, "selected_users") or [],
            leads=chosen(ids.SETTINGS_LEADS_BLOCK, ids.SETTINGS_LEADS_ACTION, "selected_users") or [],
            approval_channel=chosen(ids.SETTINGS_APPROVAL_BLOCK, ids.SETTINGS_APPROVAL_ACTION, "selected_conversation"),
            notify_channel=chosen(ids.SETTINGS_NOTIFY_BLOCK, ids.SETTINGS_NOTIFY_ACTION, "selected_conversation"),
        )


def may_edit(slack: WebClient, roles: RoleBook, team_id: str, user: str) -> bool:
    if roles.for_team(team_id).is_admin(user):
        return True
    person = slack.users_info(user=user).get("user") or {}
    return bool(person.get("is_admin") or person.get("is_owner"))


def home(store: Store, workspaces: WorkspaceSettings, team_id: str) -> View:
    """The App Home tab with this workspace's settings section."""
    return status.home(store, team_id, more=settings_blocks(workspaces.get(team_id)))


def open_settings(workspaces: WorkspaceSettings, roles: RoleBook, slack: WebClient, team_id: str, user: str,
                  trigger_id: str) -> str | None:
    """Open the settings modal; or the refusal to tell (the button is in the App Home, not a modal)."""
    if not may_edit(slack, roles, team_id, user):
        return NOT_ALLOWED
    slack.views_open(trigger_id=trigger_id, view=settings_modal(workspaces.get(team_id)))
    return None


def save_settings(store: Store, workspaces: WorkspaceSettings, roles: RoleBook, slack: WebClient, team_id: str,
                  user: str, form: SettingsForm) -> str:
    """Save the workspace's settings (checked again: the modal may be older than a change of admins)
    and show them in the saver's App Home."""
    if not may_edit(slack, roles, team_id, user):
        raise PermissionDenied(NOT_ALLOWED)
    workspaces.save(team_id, TeamSettings(**form.model_dump(), updated_by=user))
    slack.views_publish(user_id=user, view=home(store, workspaces, team_id))
    return SAVED
