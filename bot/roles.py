"""Who may do what: Marketo admins connect Dynamics, team leads approve — in each workspace.

The lists are the workspace's own (`bot.workspace_settings`: set in the App Home, else
`ADMIN_USER_IDS` and `TEAM_LEAD_USER_IDS`); one person can be both, but `bot/approvals.py`
still never lets anyone approve their own request. Every Slack route declares a `Permission`;
the router checks it for the request's team before the handler runs, so the refusal says what
was refused. Someone who is an admin or lead in one workspace is nobody in another.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from bot.config import Settings
from bot.errors import PermissionDenied
from bot.workspace_settings import WorkspaceSettings

ADMIN_ONLY = (
    "Only Marketo admins can connect Dynamics. "
    "Ask an admin (listed in the App Home's workspace settings, or ADMIN_USER_IDS) to run /connect-dynamics."
)
LEAD_ONLY = "Only team leads can approve or reject a sync request."


class Role(StrEnum):
    anyone = "anyone"
    admin = "admin"
    lead = "lead"


@dataclass(frozen=True)
class Permission:
    """Who may use a route, and what anyone else is told."""

    role: Role
    refusal: str = ""


ANYONE = Permission(Role.anyone)
CONNECT = Permission(Role.admin, ADMIN_ONLY)
READ_AUDIT = Permission(Role.admin, "Only Marketo admins can read the audit log (admins are listed in ADMIN_USER_IDS).")
CONTROL = Permission(Role.admin, "Only Marketo admins can cancel or resume a connection or its sync "
                                 "(admins are listed in ADMIN_USER_IDS).")
READ_ERRORS = Permission(Role.admin, "Only Marketo admins can read the sync errors: they show people's emails "
                                     "(admins are listed in ADMIN_USER_IDS).")
DECIDE = Permission(Role.lead, LEAD_ONLY)
SWITCH_ONGOING = Permission(Role.admin, "Only Marketo admins can disable or enable the ongoing sync "
                                        "(admins are listed in ADMIN_USER_IDS).")
RENEW = Permission(Role.admin, "Only Marketo admins can enter new Dynamics credentials "
                               "(admins are listed in ADMIN_USER_IDS).")
RETRY = Permission(Role.lead, "Only team leads can retry starting an approved sync.")


class RoleBook(Protocol):
    def for_team(self, team_id: str) -> Roles: ...


class Roles:
    """The admins and leads of one workspace (or of every workspace, as a fixed `RoleBook`)."""

    def __init__(self, admins: Iterable[str], leads: Iterable[str]) -> None:
        self.admins: frozenset[str] = frozenset(admins)
        self.leads: frozenset[str] = frozenset(leads)

    @classmethod
    def from_settings(cls, settings: Settings) -> Roles:
        return cls(settings.ADMIN_USER_IDS, settings.TEAM_LEAD_USER_IDS)

    def for_team(self, team_id: str) -> Roles:
        return self

    def is_admin(self, user: str) -> bool:
        return user in self.admins

    def is_lead(self, user: str) -> bool:
        return user in self.leads

    def has(self, user: str, role: Role) -> bool:
        return role == Role.anyone or (role == Role.admin and self.is_admin(user)) or (
            role == Role.lead and self.is_lead(user))

    def check(self, user: str, permission: Permission) -> None:
        """Raise PermissionDenied with the permission's refusal when `user` lacks its role."""
        if not self.has(user, permission.role):
            raise PermissionDenied(permission.refusal)

    def require_admin(self, user: str) -> None:
        self.check(user, CONNECT)

    def require_lead(self, user: str) -> None:
        self.check(user, DECIDE)


class TeamRoles:
    """Each workspace's roles, from its settings as `WorkspaceSettings.recent` keeps them (an App Home
    edit counts at once in the process that saved it, within `TEAM_SETTINGS_CACHE_SECONDS` elsewhere)."""

    def __init__(self, workspaces: WorkspaceSettings) -> None:
        self.workspaces = workspaces

    def for_team(self, team_id: str) -> Roles:
        chosen = self.workspaces.recent(team_id)
        return Roles(chosen.admins, chosen.leads)
