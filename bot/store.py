"""Redis persistence: the one place that knows key names.

Every key is `{prefix}:{team_id}:...` except the few that belong to the Marketo
subscription rather than a Slack team (the shared limiter), which are
`{prefix}:global:...`. Records are pydantic models stored as JSON; credentials
are Fernet-encrypted before they touch Redis. Read-modify-write goes through
`update()`, an optimistic WATCH/MULTI transaction, so concurrent writers (two leads
clicking Approve, two workers) never lose an update.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any, TypeVar

import redis
from pydantic import BaseModel

from bot.crypto import SecretBox
from bot.models import (
    Approval,
    AuditEntry,
    Connection,
    Credentials,
    SyncRun,
    now,
)

M = TypeVar("M", bound=BaseModel)

AUDIT_MAX_ENTRIES = 10_000


def _glob_escape(text: str) -> str:
    """`text` matched literally in a Redis SCAN MATCH pattern."""
    return re.sub(r"([*?\[\]\\])", r"\\\1", text)


class Store:
    def __init__(self, client: redis.Redis, secret_box: SecretBox, prefix: str = "cd") -> None:
        self.redis = client
        self._box = secret_box
        self.prefix = prefix

    # -- key names -------------------------------------------------------------------------
    def key(self, team_id: str, *parts: str) -> str:
        if not team_id:
            raise ValueError("every key carries the Slack team id")
        return ":".join([self.prefix, team_id, *parts])

    def global_key(self, *parts: str) -> str:
        return ":".join([self.prefix, "global", *parts])

    def teams_with(self, *parts: str) -> list[str]:
        """The team ids that have a `key(team, *parts)` key, found by SCAN (for periodic sweeps)."""
        head, tail = f"{self.prefix}:", ":" + ":".join(parts)
        teams: set[str] = set()
        for raw in self.redis.scan_iter(match=f"{_glob_escape(head)}*{_glob_escape(tail)}", count=1000):
            key = raw.decode() if isinstance(raw, bytes) else raw
            team = key[len(head):-len(tail)]
            if team and team != "global" and ":" not in team:
                teams.add(team)
        return sorted(teams)

    # -- generic model records ----------------------------------------------------------------
    def _get(self, key: str, model: type[M]) -> M | None:
        raw = self.redis.get(key)
        return model.model_validate_json(raw) if raw else None

    def _put(self, key: str, record: BaseModel, ttl: int | None = None) -> None:
        self.redis.set(key, record.model_dump_json(), ex=ttl)

    def update(self, key: str, model: type[M], change: Callable[[M], M | None]) -> M | None:
        """Atomically read, change and write one record. `change` may raise to abort.

        Returns the stored record, or None when the record does not exist. When `change`
        returns None the record is left as it was (and returned unchanged).
        """
        with self.redis.pipeline() as pipe:
            while True:
                try:
                    pipe.watch(key)
                    raw = pipe.get(key)
                    if raw is None:
                        pipe.unwatch()
                        return None
                    current = model.model_validate_json(raw)
                    changed = change(current)
                    if changed is None:
                        pipe.unwatch()
                        return current
                    pipe.multi()
                    pipe.set(key, changed.model_dump_json(), keepttl=True)
                    pipe.execute()
                    return changed
                except redis.WatchError:
                    continue

    # -- connections ----------------------------------------------------------------------------
    def save_connection(self, connection: Connection) -> None:
        connection.updated_at = now()
        self._put(self.key(connection.team_id, "conn", connection.id), connection)

    def get_connection(self, team_id: str, connection_id: str) -> Connection | None:
        return self._get(self.key(team_id, "conn", connection_id), Connection)

    def update_connection(
        self, team_id: str, connection_id: str, change: Callable[[Connection], Connection | None]
    ) -> Connection | None:
        return self.update(self.key(team_id, "conn", connection_id), Connection, change)

    def set_active_connection(self, team_id: str, connection_id: str) -> None:
        self.redis.set(self.key(team_id, "active"), connection_id)

    def active_connection(self, team_id: str) -> Connection | None:
        connection_id = self.redis.get(self.key(team_id, "active"))
        return self.get_connection(team_id, connection_id.decode()) if connection_id else None

    # -- credentials (encrypted) -------------------------------------------------------------------
    def save_credentials(self, team_id: str, connection_id: str, credentials: Credentials) -> None:
        sealed = self._box.seal(json.dumps(credentials.to_plain()).encode())
        self.redis.set(self.key(team_id, "creds", connection_id), sealed)

    def load_credentials(self, team_id: str, connection_id: str) -> Credentials | None:
        sealed = self.redis.get(self.key(team_id, "creds", connection_id))
        return Credentials.model_validate_json(self._box.open(sealed)) if sealed else None

    def save_draft(self, team_id: str, user_id: str, fields: dict[str, str], ttl: int = 3600) -> None:
        """What a user typed in Step 1, minus secrets, so a failed check can refill the form."""
        self.redis.set(self.key(team_id, "draft", user_id), json.dumps(fields), ex=ttl)

    def load_draft(self, team_id: str, user_id: str) -> dict[str, str]:
        raw = self.redis.get(self.key(team_id, "draft", user_id))
        return json.loads(raw) if raw else {}

    # -- the Dynamics URL lock -------------------------------------------------------------------
    def lock_dynamics_url(self, team_id: str, url: str) -> str:
        """Lock this team's Marketo instance to `url`; returns the URL that holds the lock."""
        key = self.key(team_id, "locked-url")
        self.redis.set(key, url, nx=True)
        return self.redis.get(key).decode()

    def locked_dynamics_url(self, team_id: str) -> str | None:
        raw = self.redis.get(self.key(team_id, "locked-url"))
        return raw.decode() if raw else None

    # -- approvals -------------------------------------------------------------------------------
    def save_approval(self, approval: Approval) -> None:
        self._put(self.key(approval.team_id, "approval", approval.id), approval)

    def get_approval(self, team_id: str, approval_id: str) -> Approval | None:
        return self._get(self.key(team_id, "approval", approval_id), Approval)

    def update_approval(
        self, team_id: str, approval_id: str, change: Callable[[Approval], Approval | None]
    ) -> Approval | None:
        return self.update(self.key(team_id, "approval", approval_id), Approval, change)

    # -- sync runs -------------------------------------------------------------------------------
    def save_run(self, run: SyncRun) -> None:
        self._put(self.key(run.team_id, "run", run.id), run)

    def get_run(self, team_id: str, run_id: str) -> SyncRun | None:
        return self._get(self.key(team_id, "run", run_id), SyncRun)

    def update_run(self, team_id: str, run_id: str, change: Callable[[SyncRun], SyncRun | None]) -> SyncRun | None:
        return self.update(self.key(team_id, "run", run_id), SyncRun, change)

    # -- small JSON documents (checkpoints, caches) --------------------------------------------------
    def put_json(self, key: str, value: Any, ttl: int | None = None) -> None:
        self.redis.set(key, json.dumps(value), ex=ttl)

    def get_json(self, key: str) -> Any:
        raw = self.redis.get(key)
        return json.loads(raw) if raw else None

    # -- audit log -------------------------------------------------------------------------------
    def audit(self, team_id: str, entry: AuditEntry) -> None:
        self.redis.xadd(
            self.key(team_id, "audit"),
            {"entry": entry.model_dump_json()},
            maxlen=AUDIT_MAX_ENTRIES,
            approximate=True,
        )

    def audit_entries(self, team_id: str, count: int = 20) -> list[AuditEntry]:
        rows = self.redis.xrevrange(self.key(team_id, "audit"), count=count)
        return [AuditEntry.model_validate_json(fields[b"entry"]) for _, fields in reversed(rows)]
