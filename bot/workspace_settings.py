"""Each workspace's admins, team leads, approvals channel and notifications channel.

A workspace admin sets them in the App Home; a workspace that never did gets the deployment's
environment values (`ADMIN_USER_IDS`, `TEAM_LEAD_USER_IDS`, `APPROVAL_CHANNEL`, `NOTIFY_CHANNEL`),
which is all a single-workspace install ever uses.
"""

from __future__ import annotations

from bot.config import Settings
from bot.store import Store, TeamSettings


def defaults(settings: Settings) -> TeamSettings:
    return TeamSettings(admins=settings.ADMIN_USER_IDS, leads=settings.TEAM_LEAD_USER_IDS,
                        approval_channel=settings.APPROVAL_CHANNEL, notify_channel=settings.NOTIFY_CHANNEL)


class WorkspaceSettings:
    def __init__(self, store: Store, settings: Settings) -> None:
        self.store = store
        self.default = defaults(settings)

    def get(self, team_id: str) -> TeamSettings:
        return self.store.team_settings.get(team_id) or self.default

    def save(self, team_id: str, chosen: TeamSettings) -> None:
        self.store.team_settings.save(team_id, chosen)
