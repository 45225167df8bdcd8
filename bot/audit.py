"""The audit log: who did what to which connection, in order, per Slack team.

Entries go to the Redis stream behind `store.audit()`. `detail` is free text written by
our own code only (never what a user typed, never a secret), and `action` is one of the
fixed vocabulary below, so the log can be filtered and shown without surprises.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from bot.models import AuditEntry
from bot.store import Store

CONNECTION_STARTED = "connection_started"
CONNECTION_CANCELLED = "connection_cancelled"
CREDENTIALS_VERIFIED = "credentials_verified"
CREDENTIALS_RENEWED = "credentials_renewed"
FIELDS_SELECTED = "fields_selected"
PLAN_SAVED = "plan_saved"
NOTIFY_EMAIL_SET = "notify_email_set"
APPROVAL_REQUESTED = "approval_requested"
APPROVAL_RECORDED = "approval_recorded"
APPROVED = "approved"
REJECTED = "rejected"
EXPIRED = "expired"
APPROVAL_CANCELLED = "approval_cancelled"
EFFECTS_FAILED = "effects_failed"
EFFECTS_RETRIED = "effects_retried"
SCHEMA_APPLIED = "schema_applied"
SYNC_STARTED = "sync_started"
SYNC_FINISHED = "sync_finished"
SYNC_FAILED = "sync_failed"
SYNC_PAUSED = "sync_paused"
SYNC_RESUMED = "sync_resumed"
SYNC_CANCELLED = "sync_cancelled"
MASS_CHANGE_HELD = "mass_change_held"
MASS_CHANGE_APPROVED = "mass_change_approved"
MASS_CHANGE_DISCARDED = "mass_change_discarded"
FIELDS_CHANGE_REQUESTED = "fields_change_requested"
BACKFILL_STARTED = "backfill_started"
ONGOING_SYNC_DISABLED = "ongoing_sync_disabled"
ONGOING_SYNC_ENABLED = "ongoing_sync_enabled"
PEOPLE_MERGED = "people_merged"

ACTIONS: frozenset[str] = frozenset(
    {
        CONNECTION_STARTED, CONNECTION_CANCELLED, CREDENTIALS_VERIFIED, CREDENTIALS_RENEWED, FIELDS_SELECTED, PLAN_SAVED,
        NOTIFY_EMAIL_SET, APPROVAL_REQUESTED, APPROVAL_RECORDED, APPROVED, REJECTED, EXPIRED,
        APPROVAL_CANCELLED, EFFECTS_FAILED, EFFECTS_RETRIED, SCHEMA_APPLIED, SYNC_STARTED,
        SYNC_FINISHED, SYNC_FAILED, SYNC_PAUSED, SYNC_RESUMED, SYNC_CANCELLED,
        MASS_CHANGE_HELD, MASS_CHANGE_APPROVED, MASS_CHANGE_DISCARDED, FIELDS_CHANGE_REQUESTED, BACKFILL_STARTED,
        ONGOING_SYNC_DISABLED, ONGOING_SYNC_ENABLED, PEOPLE_MERGED,
    }
)

SYSTEM = "system"  # the actor for what the bot does on its own (expiry sweeps)


class AuditLog:
    def __init__(self, store: Store, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.clock = clock

    def record(
        self, team_id: str, actor: str, action: str, connection_id: str | None = None, detail: str = ""
    ) -> AuditEntry:
        """Append one entry. Raises ValueError for an action outside the vocabulary (a bug)."""
        if action not in ACTIONS:
            raise ValueError(f"unknown audit action {action!r}")
        entry = AuditEntry(at=self.clock(), actor=actor, action=action, connection_id=connection_id, detail=detail)
        self.store.audit(team_id, entry)
        return entry

    def recent(self, team_id: str, n: int = 20) -> list[AuditEntry]:
        """The last `n` entries, oldest first."""
        return self.store.audit_entries(team_id, count=n)
