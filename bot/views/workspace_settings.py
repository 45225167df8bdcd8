"""The App Home's workspace settings: what they are now, and the modal a workspace admin edits them in."""

from __future__ import annotations

import re

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ConversationFilter,
    ConversationSelectElement,
    DividerBlock,
    HeaderBlock,
    InputBlock,
    UserMultiSelectElement,
)
from slack_sdk.models.views import View

from bot.store import TeamSettings
from bot.views import ids
from bot.views.kit import button, context, escape, mention, modal, section

MAX_PEOPLE = 100  # users in one multi-select
CHANNEL_ID = re.compile(r"[CG][A-Z0-9]+")


def _people(users: list[str]) -> str:
    return ", ".join(mention(u) for u in users) if users else "nobody yet"


def _channel(channel: str | None, missing: str) -> str:
    """`<#C…>` for a channel id; anything else as escaped text."""
    if not channel:
        return missing
    return f"<#{channel}>" if CHANNEL_ID.fullmatch(channel) else escape(channel)


def settings_blocks(chosen: TeamSettings) -> list[Block]:
    """The App Home section: who may do what in this workspace and where posts go, with an Edit button."""
    origin = (f"Last changed by {mention(chosen.updated_by)}." if chosen.updated_by
              else "These are the deployment's defaults; a workspace admin can set this workspace's own.")
    return [
        DividerBlock(),
        HeaderBlock(text="Workspace settings"),
        section(f"*Marketo admins* (may connect Dynamics): {_people(chosen.admins)}\n"
                f"*Team leads* (approve syncs): {_people(chosen.leads)}\n"
                f"*Approvals channel*: {_channel(chosen.approval_channel, 'none (each lead gets a DM)')}\n"
                f"*Notifications channel*: {_channel(chosen.notify_channel, 'none')}"),
        context(origin),
        ActionsBlock(block_id=ids.HOME_SETTINGS_BLOCK,
                     elements=[button("Edit settings", ids.HOME_SETTINGS_ACTION)]),
    ]


def _channel_select(action_id: str, channel: str | None) -> ConversationSelectElement:
    return ConversationSelectElement(
        action_id=action_id, initial_conversation=channel, placeholder="Choose a channel",
        filter=ConversationFilter(include=["public", "private"], exclude_bot_users=True),
    )


def settings_modal(chosen: TeamSettings) -> View:
    """Slack workspace admins, owners and this workspace's Marketo admins may save it."""
    return modal(
        "Workspace settings", ids.SETTINGS_CALLBACK,
        [
            section("Who may connect Dynamics and approve syncs in this workspace, and where the bot posts."),
            InputBlock(block_id=ids.SETTINGS_ADMINS_BLOCK, label="Marketo admins",
                       hint="May run /connect-dynamics and ask for approval.",
                       element=UserMultiSelectElement(action_id=ids.SETTINGS_ADMINS_ACTION,
                                                      initial_users=chosen.admins[:MAX_PEOPLE] or None,
                                                      placeholder="Choose people")),
            InputBlock(block_id=ids.SETTINGS_LEADS_BLOCK, label="Team leads", optional=True,
                       hint="Approve or reject sync requests (never their own).",
                       element=UserMultiSelectElement(action_id=ids.SETTINGS_LEADS_ACTION,
                                                      initial_users=chosen.leads[:MAX_PEOPLE] or None,
                                                      placeholder="Choose people")),
            InputBlock(block_id=ids.SETTINGS_APPROVAL_BLOCK, label="Approvals channel", optional=True,
                       hint="Without one, each lead gets the request by DM.",
                       element=_channel_select(ids.SETTINGS_APPROVAL_ACTION, chosen.approval_channel)),
            InputBlock(block_id=ids.SETTINGS_NOTIFY_BLOCK, label="Notifications channel", optional=True,
                       hint="Sync progress and summaries.",
                       element=_channel_select(ids.SETTINGS_NOTIFY_ACTION, chosen.notify_channel)),
        ],
        submit="Save",
    )
