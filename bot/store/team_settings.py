"""Per-workspace settings as saved from the App Home (`bot.workspace_settings` adds the defaults)."""

from __future__ import annotations

import redis
from pydantic import BaseModel, Field

from bot.store.keys import Keys


class TeamSettings(BaseModel):
    admins: list[str] = Field(default_factory=list)
    leads: list[str] = Field(default_factory=list)
    approval_channel: str | None = None
    notify_channel: str | None = None
    updated_by: str | None = None  # None: the deployment's defaults, never saved for this team


class TeamSettingsRecords:
    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        self._redis, self._keys = client, keys

    def get(self, team_id: str) -> TeamSettings | None:
        raw = self._redis.get(self._keys.team_settings(team_id))
        return TeamSettings.model_validate_json(raw) if raw else None

    def save(self, team_id: str, settings: TeamSettings) -> None:
        self._redis.set(self._keys.team_settings(team_id), settings.model_dump_json())
