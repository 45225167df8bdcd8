"""Redis persistence: every record of the product, behind named methods.

Key names come from `bot.store.keys`. Records are pydantic models stored as JSON; secrets
(Dynamics credentials, the Marketo token) are Fernet-encrypted before they touch Redis.
Read-modify-write (`update_connection`, `update_approval`, `update_run`) goes through the
optimistic transaction of `bot.store.transaction`, so concurrent writers (two leads clicking
Approve, two workers) never lose an update.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any, TypeVar, cast

import redis
from pydantic import BaseModel
from redis.client import Pipeline

from bot.crypto import SecretBox
from bot.models import (
    Approval,
    AuditEntry,
    Connection,
    Credentials,
    DynamicsLock,
    SyncRun,
    now,
)
from bot.store.alert_states import AlertStates
from bot.store.brakes import MassChangeHolds
from bot.store.bulk_slots import BulkSlots
from bot.store.connection import as_text
from bot.store.health import Health
from bot.store.installations import RedisInstallationStore, RedisOAuthStateStore
from bot.store.keys import GLOBAL, Keys
from bot.store.limiter import LimiterState
from bot.store.links import CrmLinks
from bot.store.locks import Lease
from bot.store.ongoing import OngoingFigures, OngoingRecords
from bot.store.people import PersonLinks
from bot.store.runs import ActiveRuns, DeltaLinks, IncrementalSchedule, RunRecords, SkipList, Watermarks
from bot.store.secrets import RotationReport, SealedValue, rotate_secrets
from bot.store.sync_errors import SyncErrors
from bot.store.team_settings import TeamSettingsRecords
from bot.store.transaction import transact
from bot.store.webhooks import WebhookRecords
from bot.store.write_back import MarketoWrites, WriteBackRecords

M = TypeVar("M", bound=BaseModel)

AUDIT_MAX_ENTRIES = 10_000


class Store:
    def __init__(self, client: redis.Redis, secret_box: SecretBox, prefix: str = "cd", *,
                 marketo_instance: str = "") -> None:
        """`marketo_instance` (`bot.marketo.instance.instance_id`) names the Marketo instance the
        Dynamics org lock belongs to; every Slack team of the deployment shares it."""
        self.redis = client
        self._box = secret_box
        self.keys = Keys(prefix)
        self.marketo_instance = marketo_instance
        self.active_runs = ActiveRuns(client, self.keys)
        self.delta_links = DeltaLinks(client, self.keys)
        self.watermarks = Watermarks(client, self.keys)
        self.incremental = IncrementalSchedule(client, self.keys)
        self.holds = MassChangeHolds(client, self.keys)
        self.health = Health(client, self.keys)
        self.ongoing = OngoingRecords(client, self.keys)
        self.sync_errors = SyncErrors(client, self.keys)
        self.webhooks = WebhookRecords(client, self.keys, secret_box)
        self.alert_states = AlertStates(client, self.keys)
        self.installations = RedisInstallationStore(client, self.keys, secret_box)
        self.team_settings = TeamSettingsRecords(client, self.keys)
        self.write_back = WriteBackRecords(client, self.keys)
        self.marketo_writes = MarketoWrites(client, self.keys)
        self.people = PersonLinks(client, self.keys)
        self.links = CrmLinks(client, self.keys)

    def oauth_states(self, secret: str, expiration_seconds: int) -> RedisOAuthStateStore:
        return RedisOAuthStateStore(self.redis, self.keys, secret, expiration_seconds)

    @property
    def prefix(self) -> str:
        return self.keys.prefix

    def ping(self) -> bool:
        return bool(self.redis.ping())

    def teams_with_pending_approvals(self) -> list[str]:
        """The team ids that have pending approvals, found by SCAN (for the periodic expiry sweep)."""
        pattern, head, tail = self.keys.teams_pattern(Keys.PENDING_APPROVALS)
        teams: set[str] = set()
        for raw in self.redis.scan_iter(match=pattern, count=1000):
            key = as_text(raw)
            team = key[len(head):-len(tail)]
            if team and team != GLOBAL and ":" not in team:
                teams.add(team)
        return sorted(teams)

    # -- generic model records ----------------------------------------------------------------
    def _get(self, key: str, model: type[M]) -> M | None:
        raw = self.redis.get(key)
        return model.model_validate_json(raw) if raw else None

    def _put(self, key: str, record: BaseModel, ttl: int | None = None) -> None:
        self.redis.set(key, record.model_dump_json(), ex=ttl)

    def _update(self, key: str, model: type[M], change: Callable[[M], M | None]) -> M | None:
        """Atomically read, change and write one record. `change` may raise to abort.

        Returns the stored record, or None when the record does not exist. When `change`
        returns None the record is left as it was (and returned unchanged).
        """
        def body(pipe: Pipeline) -> tuple[Callable[[Pipeline], object] | None, M | None]:
            raw = pipe.get(key)
            if raw is None:
                return None, None
            current = model.model_validate_json(raw)
            changed = change(current)
            if changed is None:
                return None, current
            return (lambda p: p.set(key, changed.model_dump_json(), keepttl=True)), changed

        return transact(self.redis, [key], body)

    # -- connections ----------------------------------------------------------------------------
    def save_connection(self, connection: Connection) -> None:
        connection.updated_at = now()
        self._put(self.keys.connection(connection.team_id, connection.id), connection)

    def get_connection(self, team_id: str, connection_id: str) -> Connection | None:
        return self._get(self.keys.connection(team_id, connection_id), Connection)

    def update_connection(
        self, team_id: str, connection_id: str, change: Callable[[Connection], Connection | None]
    ) -> Connection | None:
        return self._update(self.keys.connection(team_id, connection_id), Connection, change)

    def set_active_connection(self, team_id: str, connection_id: str) -> None:
        self.redis.set(self.keys.active_connection(team_id), connection_id)

    def active_connection(self, team_id: str) -> Connection | None:
        connection_id = self.redis.get(self.keys.active_connection(team_id))
        if not connection_id:
            return None
        return self.get_connection(team_id, as_text(connection_id))

    # -- credentials (encrypted) -------------------------------------------------------------------
    def save_credentials(self, team_id: str, connection_id: str, credentials: Credentials) -> None:
        sealed = self._box.seal(json.dumps(credentials.to_plain()).encode())
        self.redis.set(self.keys.credentials(team_id, connection_id), sealed)

    def load_credentials(self, team_id: str, connection_id: str) -> Credentials | None:
        sealed = self.redis.get(self.keys.credentials(team_id, connection_id))
        return Credentials.model_validate_json(self._box.open(sealed)) if sealed else None

    def rotate_secrets(self) -> RotationReport:
        """Every sealed secret (credentials of every team, cached Marketo tokens) re-sealed with the newest key."""
        return rotate_secrets(self.redis, self.keys, self._box)

    def save_draft(self, team_id: str, user_id: str, fields: dict[str, str], ttl: int = 3600) -> None:
        """What a user typed in Step 1, minus secrets, so a failed check can refill the form."""
        self.redis.set(self.keys.draft(team_id, user_id), json.dumps(fields), ex=ttl)

    def load_draft(self, team_id: str, user_id: str) -> dict[str, str]:
        raw = self.redis.get(self.keys.draft(team_id, user_id))
        return json.loads(raw) if raw else {}

    # -- the Dynamics org lock (one per Marketo instance) -----------------------------------------
    def take_dynamics_lock(self, lock: DynamicsLock) -> DynamicsLock:
        """Lock the Marketo instance to `lock` unless it is locked already; returns the lock that holds.

        SET NX decides atomically who locks; the record is written once and never changed, so
        reading it after a lost SET NX is safe (released in between, SET NX is tried again)."""
        key = self.keys.dynamics_lock(self.marketo_instance)
        while True:
            if self.redis.set(key, lock.model_dump_json(), nx=True):
                return lock
            held = self.redis.get(key)
            if held is not None:  # else released between the two commands: try again
                return DynamicsLock.model_validate_json(held)

    def release_dynamics_lock(self, team_id: str, connection_id: str) -> bool:
        """Unlock the Marketo instance if this connection holds its lock (before any Marketo field was
        created for it); True when released. Checked and deleted in one transaction."""
        key = self.keys.dynamics_lock(self.marketo_instance)

        def body(pipe: Pipeline) -> tuple[Callable[[Pipeline], object] | None, bool]:
            held = pipe.get(key)
            lock = DynamicsLock.model_validate_json(held) if held else None
            if lock is None or (lock.team_id, lock.connection_id) != (team_id, connection_id):
                return None, False
            return (lambda p: p.delete(key)), True

        return transact(self.redis, [key], body)

    def instance_lock(self) -> DynamicsLock | None:
        """The lock of this deployment's Marketo instance: which team's connection holds it."""
        held = self.redis.get(self.keys.dynamics_lock(self.marketo_instance))
        return DynamicsLock.model_validate_json(held) if held else None

    def dynamics_locks(self, team_id: str) -> list[DynamicsLock]:
        """Every lock a connection of `team_id` must satisfy: the Marketo instance's, then the team's
        own URL lock from before locks were kept per instance (no organization id: still honoured,
        compared by URL)."""
        locks = []
        held = self.redis.get(self.keys.dynamics_lock(self.marketo_instance))
        if held:
            locks.append(DynamicsLock.model_validate_json(held))
        legacy = self.redis.get(self.keys.locked_url(team_id))
        if legacy:
            locks.append(DynamicsLock(url=as_text(legacy), team_id=team_id))
        return locks

    # -- approvals -------------------------------------------------------------------------------
    def save_approval(self, approval: Approval) -> None:
        self._put(self.keys.approval(approval.team_id, approval.id), approval)

    def get_approval(self, team_id: str, approval_id: str) -> Approval | None:
        return self._get(self.keys.approval(team_id, approval_id), Approval)

    def update_approval(
        self, team_id: str, approval_id: str, change: Callable[[Approval], Approval | None]
    ) -> Approval | None:
        return self._update(self.keys.approval(team_id, approval_id), Approval, change)

    # -- sync runs -------------------------------------------------------------------------------
    def save_run(self, run: SyncRun) -> None:
        self._put(self.keys.run(run.team_id, run.id), run)

    def get_run(self, team_id: str, run_id: str) -> SyncRun | None:
        return self._get(self.keys.run(team_id, run_id), SyncRun)

    def update_run(self, team_id: str, run_id: str, change: Callable[[SyncRun], SyncRun | None]) -> SyncRun | None:
        return self._update(self.keys.run(team_id, run_id), SyncRun, change)

    # -- approvals pending expiry ------------------------------------------------------------------
    def add_pending_approval(self, team_id: str, approval_id: str, expires_at: float) -> None:
        self.redis.zadd(self.keys.pending_approvals(team_id), {approval_id: expires_at})

    def remove_pending_approval(self, team_id: str, approval_id: str) -> None:
        self.redis.zrem(self.keys.pending_approvals(team_id), approval_id)

    def pending_approvals_due(self, team_id: str, at: float) -> list[str]:
        """Ids of the team's pending approvals whose `expires_at` is at or before `at`."""
        due = cast(list[bytes | str], self.redis.zrangebyscore(self.keys.pending_approvals(team_id), "-inf", at))
        return [as_text(raw) for raw in due]

    # -- sync runs: checkpoints, leases, ledger, progress message ------------------------------------
    def run_records(self, team_id: str, run_id: str, checkpoint_model: type[M]) -> RunRecords[M]:
        return RunRecords(self.redis, self.keys, team_id, run_id, checkpoint_model)

    def skip_list(self, team_id: str, run_id: str) -> SkipList:
        return SkipList(self.redis, self.keys.skips(team_id, run_id))

    def sync_lease(self, team_id: str, connection_id: str, entity: str, ttl: float, owner: str = "") -> Lease:
        """One running sync (initial or incremental) per connection and entity."""
        return Lease(self.redis, self.keys.sync_lock(team_id, connection_id, entity), ttl, owner=owner)

    def sync_leased(self, team_id: str, connection_id: str, entity: str) -> bool:
        """Does anyone hold the sync lease of this connection and entity?"""
        return bool(self.redis.exists(self.keys.sync_lock(team_id, connection_id, entity)))

    def sweep_lease(self, ttl: float) -> Lease:
        """Lets one worker at a time sweep."""
        return Lease(self.redis, self.keys.sweeping(), ttl)

    def start_guard(self, team_id: str, ttl: float) -> Lease:
        """Serialises the creation of a draft connection per team."""
        return Lease(self.redis, self.keys.flow_lock(team_id), ttl, poll=0.01)

    def take_progress_slot(self, team_id: str, run_id: str, interval_ms: int) -> int:
        """The progress message's rate slot (SET NX PX): 0 when taken, else milliseconds until it frees."""
        key = self.keys.progress_slot(team_id, run_id)
        if self.redis.set(key, "1", nx=True, px=interval_ms):
            return 0
        return max(int(self.redis.pttl(key)), 1)

    def claim_progress_post(self, team_id: str, run_id: str) -> bool:
        """True for the one caller that gets to post the run's progress message."""
        return bool(self.redis.set(self.keys.progress_post(team_id, run_id), "1", nx=True))

    # -- the ongoing sync's error list and status ---------------------------------------------------------
    def pending_failures(self, team_id: str, connection_id: str, entity: str) -> int:
        """Records of `entity` on the connection's error list (being retried or kept as errors)."""
        return self.sync_errors.pending_failures(team_id, connection_id, entity)

    def ongoing_figures(self, team_id: str, connection_id: str, entities: list[str], now: float) -> OngoingFigures:
        """The status of the ongoing sync: the cycles' figures (one round trip) and each entity's failures."""
        figures = self.ongoing.figures(team_id, connection_id, entities, now)
        for row in figures.entities:
            row.pending_failures = self.pending_failures(team_id, connection_id, row.entity)
        return figures

    # -- Dataverse metadata cache ------------------------------------------------------------------------
    def cache_metadata(self, team_id: str, connection_id: str, entity: str, document: Any, ttl: int) -> None:
        self.redis.set(self.keys.metadata(team_id, connection_id, entity), json.dumps(document), ex=ttl)

    def cached_metadata(self, team_id: str, connection_id: str, entity: str) -> Any:
        raw = self.redis.get(self.keys.metadata(team_id, connection_id, entity))
        return json.loads(raw) if raw else None

    def forget_metadata(self, team_id: str, connection_id: str, entity: str) -> None:
        self.redis.delete(self.keys.metadata(team_id, connection_id, entity))

    # -- Marketo (shared by every team) -------------------------------------------------------------------
    def marketo_token(self, base_url: str, client_id: str) -> SealedValue:
        """The Marketo access token of one instance and API user, shared by every process, encrypted at rest."""
        instance = hashlib.sha256(f"{base_url.rstrip('/')}|{client_id}".encode()).hexdigest()[:16]
        return SealedValue(self.redis, self._box, self.keys.marketo_token(instance))

    def marketo_limiter_state(self) -> LimiterState:
        return LimiterState(self.redis, self.keys)

    def bulk_import_slots(self) -> BulkSlots:
        return BulkSlots(self.redis, self.keys)

    def marketo_deleted_field_created(self) -> bool:
        return bool(self.redis.exists(self.keys.marketo_deleted_field()))

    def mark_marketo_deleted_field_created(self) -> None:
        self.redis.set(self.keys.marketo_deleted_field(), "1")

    # -- audit log -------------------------------------------------------------------------------
    def audit(self, team_id: str, entry: AuditEntry) -> None:
        self.redis.xadd(
            self.keys.audit(team_id),
            {"entry": entry.model_dump_json()},
            maxlen=AUDIT_MAX_ENTRIES,
            approximate=True,
        )

    def audit_entries(self, team_id: str, count: int = 20) -> list[AuditEntry]:
        rows = cast(list[tuple[bytes, dict[bytes, bytes]]], self.redis.xrevrange(self.keys.audit(team_id), count=count))
        return [AuditEntry.model_validate_json(fields[b"entry"]) for _, fields in reversed(rows)]
