"""New credentials for the connected org: the form, and what came of the check."""

from __future__ import annotations

from dataclasses import dataclass

from slack_sdk.models.blocks import Block, InputBlock, PlainTextInputElement
from slack_sdk.models.views import View

from bot.models import CheckResult, Connection
from bot.views import ids
from bot.views.kit import ViewMetadata, context, cut, escape, modal, section, sections
from bot.views.step1 import check_line


@dataclass(frozen=True)
class Asked:
    """Which secrets the form asks for. When the saved credentials cannot be read (ENCRYPTION_KEY
    lost), whether the connection used a client id is unknown: the client id is asked too, and
    every input is optional (the check decides)."""

    password: bool = True
    client_secret: bool = False
    unknown: bool = False


def _input(block_id: str, action_id: str, label: str, hint: str, *, optional: bool = False,
           initial: str | None = None) -> InputBlock:
    return InputBlock(block_id=block_id, label=label, hint=hint, optional=optional, element=PlainTextInputElement(
        action_id=action_id, max_length=3000, initial_value=cut(initial, 3000) if initial else None))


def renew_credentials_modal(connection: Connection, asked: Asked, *, message: str | None = None,
                            checks: list[CheckResult] | None = None) -> View:
    """The connected org's URL and sync user, and inputs for the new password and/or client secret.

    `message` (a refusal) and the failing `checks` of the last attempt are shown at the top. The URL is
    an input, filled in: only the same Dataverse organization is accepted, under whatever address.
    """
    blocks: list[Block] = [section(
        "*New credentials for the connected Dynamics org*\n"
        f"*Dynamics org:* {escape(connection.dynamics_url or 'unknown')}\n"
        f"*Sync user:* {escape(connection.username or 'unknown')}\n"
        "They are checked with the pre-flight checklist before they replace the saved ones; the sync then "
        "continues where it stopped, without a new approval.")]
    if message:
        blocks.append(section(f":x: {escape(message)}"))
    failing = [check for check in checks or [] if not check.ok]
    if failing:
        blocks += sections([check_line(check) for check in failing[:20]],
                           ":x: *The pre-flight checklist did not pass; the saved credentials were not changed.*")
    blocks.append(_input(ids.URL_BLOCK, ids.URL_ACTION, "Dynamics URL",
                         "Change it only if the organization's address changed: it must be the same organization.",
                         initial=connection.dynamics_url))
    if asked.password:
        blocks.append(_input(ids.PASSWORD_BLOCK, ids.PASSWORD_ACTION, "New password",
                             "The sync user's current password. Slack shows it while you type; it is stored "
                             "encrypted and never shown again.", optional=asked.unknown))
    if asked.unknown:
        blocks.append(_input(ids.CLIENT_ID_BLOCK, ids.CLIENT_ID_ACTION, "Client ID",
                             "Only if the connection signs in through an app registration.", optional=True))
    if asked.client_secret or asked.unknown:
        blocks.append(_input(ids.CLIENT_SECRET_BLOCK, ids.CLIENT_SECRET_ACTION, "New client secret",
                             "The app registration's client secret (its value, not its ID).", optional=asked.unknown))
    if asked.unknown:
        blocks.append(context("The saved credentials cannot be read (was ENCRYPTION_KEY changed?): enter all of them."))
    return modal("New credentials", ids.RENEW_CALLBACK, blocks, submit="Check & save",
                 metadata=ViewMetadata(connection_id=connection.id))


def renewed_modal(resumed: list[str]) -> View:
    """The new credentials passed and are saved; `resumed` says what continues (lines written by the bot)."""
    lines = "\n".join(f"• {escape(line)}" for line in resumed)
    return modal("New credentials", ids.INFO_CALLBACK,
                 [section(f":white_check_mark: *The new credentials passed the pre-flight checklist and are saved.*"
                          f"\n{lines}")], close="Close")
