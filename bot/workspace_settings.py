"""Each workspace's admins, team leads, approvals channel and notifications channel.

A workspace admin sets them in the App Home; a workspace that never did gets the deployment's
environment values (`ADMIN_USER_IDS`, `TEAM_LEAD_USER_IDS`, `APPROVAL_CHANNEL`, `NOTIFY_CHANNEL`),
which is all a single-workspace install ever uses.

`recent` is the read of the hot path (the role check before every permissioned Slack ack): it
keeps each team's settings in this process for `max_age` seconds, so a burst of requests costs
one Redis read per team, not one per request. A save drops this process's copy at once; another
process (web or worker) sees the change within `max_age` seconds (`TEAM_SETTINGS_CACHE_SECONDS`).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from bot.config import Settings
from bot.store import Store, TeamSettings


def defaults(settings: Settings) -> TeamSettings:
    return TeamSettings(admins=settings.ADMIN_USER_IDS, leads=settings.TEAM_LEAD_USER_IDS,
                        approval_channel=settings.APPROVAL_CHANNEL, notify_channel=settings.NOTIFY_CHANNEL)


class WorkspaceSettings:
    def __init__(self, store: Store, settings: Settings, clock: Callable[[], float] = time.monotonic) -> None:
        self.store = store
        self.default = defaults(settings)
        self.max_age = settings.TEAM_SETTINGS_CACHE_SECONDS
        self._clock = clock
        self._recent: dict[str, tuple[float, TeamSettings]] = {}

    def get(self, team_id: str) -> TeamSettings:
        return self.store.team_settings.get(team_id) or self.default

    def recent(self, team_id: str) -> TeamSettings:
        """`get`, at most `max_age` seconds old (read from Redis when older or never read here)."""
        now = self._clock()
        kept = self._recent.get(team_id)
        if kept is not None and now - kept[0] < self.max_age:
            return kept[1]
        chosen = self.get(team_id)
        self._recent[team_id] = (now, chosen)
        return chosen

    def save(self, team_id: str, chosen: TeamSettings) -> None:
        self.store.team_settings.save(team_id, chosen)
        self._recent.pop(team_id, None)
