"""Per-workspace settings: who the admins and team leads are, where approvals and notices go.

A workspace admin edits them in the App Home; a workspace that never saved any gets the
deployment's environment values (`ADMIN_USER_IDS`, `TEAM_LEAD_USER_IDS`, `APPROVAL_CHANNEL`,
`NOTIFY_CHANNEL`), which is all a single-workspace install ever uses.
"""

from __future__ import annotations

import redis
from pydantic import BaseModel, Field

from bot.store.keys import Keys


class TeamSettings(BaseModel):
    admins: list[str] = Field(default_factory=list)
    leads: list[str] = Field(default_factory=list)
    approval_channel: str | None = None
    notify_channel: str | None = None
    updated_by: str | None = None  # None: the environment's defaults, never saved for this team


class TeamSettingsRecords:
    def __init__(self, client: redis.Redis, keys: Keys, default: TeamSettings) -> None:
        self._redis, self._keys, self.default = client, keys, default

    def get(self, team_id: str) -> TeamSettings:
        raw = self._redis.get(self._keys.team_settings(team_id))
        return TeamSettings.model_validate_json(raw) if raw else self.default

    def save(self, team_id: str, settings: TeamSettings) -> None:
        self._redis.set(self._keys.team_settings(team_id), settings.model_dump_json())
