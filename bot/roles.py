"""Who may do what: Marketo admins connect Dynamics, team leads approve.

The lists come from settings (`ADMIN_USER_IDS`, `TEAM_LEAD_USER_IDS`); one person can be
both, but `bot/approvals.py` still never lets anyone approve their own request.
"""

from __future__ import annotations

from collections.abc import Iterable

from bot.config import Settings
from bot.errors import PermissionDenied

ADMIN_ONLY = (
    "Only Marketo admins can connect Dynamics. "
    "Ask an admin (listed in ADMIN_USER_IDS) to run /connect-dynamics."
)
LEAD_ONLY = "Only team leads can approve or reject a sync request."


class Roles:
    def __init__(self, admins: Iterable[str], leads: Iterable[str]) -> None:
        self.admins: frozenset[str] = frozenset(admins)
        self.leads: frozenset[str] = frozenset(leads)

    @classmethod
    def from_settings(cls, settings: Settings) -> Roles:
        return cls(settings.ADMIN_USER_IDS, settings.TEAM_LEAD_USER_IDS)

    def is_admin(self, user: str) -> bool:
        return user in self.admins

    def is_lead(self, user: str) -> bool:
        return user in self.leads

    def require_admin(self, user: str) -> None:
        if not self.is_admin(user):
            raise PermissionDenied(ADMIN_ONLY)

    def require_lead(self, user: str) -> None:
        if not self.is_lead(user):
            raise PermissionDenied(LEAD_ONLY)
