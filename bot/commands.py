"""The subcommands of `/connect-dynamics`: one table that the router, the help text and the README follow.

Adding a command is one line here plus its handler in `handlers/commands.py`; who may use it
(`Permission`) and what `help` says about it come from this line only.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.roles import (
    ANYONE,
    CONNECT,
    CONTROL,
    READ_AUDIT,
    READ_ERRORS,
    RENEW,
    SWITCH_ONGOING,
    Permission,
    Role,
)

COMMAND = "/connect-dynamics"


@dataclass(frozen=True)
class Subcommand:
    name: str
    """What follows the command (`""` for the bare command)."""
    permission: Permission
    summary: str
    aliases: tuple[str, ...] = ()
    arguments: str = ""
    """What may follow the name, as `help` and the README show it (e.g. `[entity] [since]`)."""

    @property
    def usage(self) -> str:
        return " ".join(part for part in (COMMAND, self.name, self.arguments) if part)


SUBCOMMANDS: tuple[Subcommand, ...] = (
    Subcommand("", CONNECT, "start (or continue) connecting: credentials, fields, then approval", ("connect",)),
    Subcommand("status", ANYONE, "where the connection and the sync stand, and the ongoing sync's figures"),
    Subcommand("errors", READ_ERRORS, "the ongoing sync's failed records, newest first, and the full list as a CSV file",
               arguments="[entity] [since]"),
    Subcommand("conflicts", READ_ERRORS, "fields changed on both sides between two cycles: both values and which "
               "one won", arguments="[entity]"),
    Subcommand("disable", SWITCH_ONGOING, "stop the ongoing sync (nothing is missed: `enable` catches up)"),
    Subcommand("enable", SWITCH_ONGOING, "start the ongoing sync again; it catches up from where it stopped"),
    Subcommand("credentials", RENEW, "enter new credentials for the connected org (the sync user's password or "
               "client secret changed); the sync goes on where it stopped"),
    Subcommand("fields", CONNECT, "change the fields synced after go-live: a team lead approves, then the added "
               "fields are backfilled"),
    Subcommand("cancel", CONTROL, "withdraw a pending approval request, stop a running sync or drop a draft"),
    Subcommand("resume", CONTROL, "resume a sync paused by Marketo's daily quota or an access error"),
    Subcommand("audit", READ_AUDIT, "the latest entries of the audit log: who did what, and when"),
    Subcommand("help", ANYONE, "this help"),
)

WHO: dict[Role, str] = {Role.anyone: "anyone", Role.admin: "admins", Role.lead: "team leads"}
"""How the help text and the README's command table name each role."""


def by_name() -> dict[str, Subcommand]:
    """Every name a user may type (aliases included) to its subcommand."""
    return {name: sub for sub in SUBCOMMANDS for name in (sub.name, *sub.aliases)}
