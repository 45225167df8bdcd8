"""Every Redis key name of the product, and nothing else.

Team keys are `{prefix}:{team_id}:…`; the few that belong to the Marketo subscription or to
all workers rather than to one Slack team are `{prefix}:global:…`. RQ's keys are prefixed by
`bot.store.jobs` with `rq_prefix`.
"""

from __future__ import annotations

import re

GLOBAL = "global"


def _glob_escape(text: str) -> str:
    """`text` matched literally in a Redis SCAN MATCH pattern."""
    return re.sub(r"([*?\[\]\\])", r"\\\1", text)


class Keys:
    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def _team(self, team_id: str, *parts: str) -> str:
        if not team_id:
            raise ValueError("every key carries the Slack team id")
        return ":".join([self.prefix, team_id, *parts])

    def _global(self, *parts: str) -> str:
        return ":".join([self.prefix, GLOBAL, *parts])

    # -- connections and the flow --------------------------------------------------------------
    def connection(self, team_id: str, connection_id: str) -> str:
        return self._team(team_id, "conn", connection_id)

    def active_connection(self, team_id: str) -> str:
        return self._team(team_id, "active")

    def credentials(self, team_id: str, connection_id: str) -> str:
        return self._team(team_id, "creds", connection_id)

    def credentials_pattern(self) -> str:
        """SCAN pattern for every team's `credentials` keys (it may match more: check with `credentials_of`)."""
        return f"{_glob_escape(self.prefix)}:*:creds:*"

    def credentials_of(self, key: str) -> tuple[str, str] | None:
        """(team id, connection id) when `key` is a `credentials` key, else None."""
        head = f"{self.prefix}:"
        parts = key[len(head):].split(":") if key.startswith(head) else []
        if len(parts) == 3 and parts[1] == "creds" and parts[0] != GLOBAL:
            return parts[0], parts[2]
        return None

    def draft(self, team_id: str, user_id: str) -> str:
        return self._team(team_id, "draft", user_id)

    def locked_url(self, team_id: str) -> str:
        """The per-team URL lock written before the lock moved to the Marketo instance; read only."""
        return self._team(team_id, "locked-url")

    def flow_lock(self, team_id: str) -> str:
        """Serialises the creation of a draft connection per team."""
        return self._team(team_id, "flow-lock")

    def metadata(self, team_id: str, connection_id: str, entity: str) -> str:
        return self._team(team_id, "meta", connection_id, entity)

    def audit(self, team_id: str) -> str:
        return self._team(team_id, "audit")

    # -- approvals -------------------------------------------------------------------------------
    def approval(self, team_id: str, approval_id: str) -> str:
        return self._team(team_id, "approval", approval_id)

    PENDING_APPROVALS = "approvals-pending"

    def pending_approvals(self, team_id: str) -> str:
        """Sorted set of the team's pending approval ids by `expires_at`."""
        return self._team(team_id, self.PENDING_APPROVALS)

    def teams_pattern(self, *parts: str) -> tuple[str, str, str]:
        """(SCAN pattern, head, tail) for the keys `_team(any team, *parts)`."""
        head, tail = f"{self.prefix}:", ":" + ":".join(parts)
        return f"{_glob_escape(head)}*{_glob_escape(tail)}", head, tail

    # -- sync runs -------------------------------------------------------------------------------
    def run(self, team_id: str, run_id: str) -> str:
        return self._team(team_id, "run", run_id)

    def run_cancel(self, team_id: str, run_id: str) -> str:
        return self._team(team_id, "run", run_id, "cancel")

    def checkpoint(self, team_id: str, run_id: str, entity: str) -> str:
        return self._team(team_id, "run", run_id, "ckpt", entity)

    def inflight(self, team_id: str, run_id: str, entity: str) -> str:
        return self._team(team_id, "run", run_id, "inflight", entity)

    def skips(self, team_id: str, run_id: str) -> str:
        """The failure ledger of a run (a list of JSON entries)."""
        return self._team(team_id, "run", run_id, "skips")

    def progress_slot(self, team_id: str, run_id: str) -> str:
        """The progress message's update throttle."""
        return self._team(team_id, "run", run_id, "progress-at")

    def progress_post(self, team_id: str, run_id: str) -> str:
        """Claimed by the one process that posts the progress message."""
        return self._team(team_id, "run", run_id, "progress-post")

    def sync_lock(self, team_id: str, connection_id: str, entity: str) -> str:
        """One running sync (initial or incremental) per connection and entity."""
        return self._team(team_id, "sync-lock", connection_id, entity)

    def delta_link(self, team_id: str, connection_id: str, entity: str) -> str:
        return self._team(team_id, "delta", connection_id, entity)

    def delta_offer(self, team_id: str, connection_id: str, entity: str) -> str:
        """A delta link a finished backfill offers the incremental cycles (it covers the added columns)."""
        return self._team(team_id, "delta-offer", connection_id, entity)

    def watermark(self, team_id: str, connection_id: str, entity: str) -> str:
        """How far a table without change tracking was synced (by `modifiedon`)."""
        return self._team(team_id, "watermark", connection_id, entity)

    def mass_change_hold(self, team_id: str, connection_id: str, entity: str) -> str:
        """An entity's incremental cycle held by the mass-change brake (a `MassChangeHold`)."""
        return self._team(team_id, "brake", connection_id, entity)

    def mass_change_ids(self, team_id: str, connection_id: str, entity: str) -> str:
        """The set of record ids a mass-change hold holds."""
        return self._team(team_id, "brake", connection_id, entity, "ids")

    # -- one Marketo person per human (`bot.sync.identity`) ---------------------------------------------
    def qualified_leads(self, team_id: str, connection_id: str) -> str:
        """Hash: a lead's id → the id of the contact it was qualified into (they share one Marketo person)."""
        return self._team(team_id, "people", connection_id, "qualified")

    def person_accounts(self, team_id: str, connection_id: str) -> str:
        """Hash: `lead:<id>` / `contact:<id>` → the id of the account the person works for, as last synced."""
        return self._team(team_id, "people", connection_id, "account-of")

    def account_people(self, team_id: str, connection_id: str, account_id: str) -> str:
        """Set of the `lead:<id>` / `contact:<id>` synced while they worked for the account (check `person_accounts`)."""
        return self._team(team_id, "people", connection_id, "at", account_id)

    # -- CRM links: people to their companies, records to their owners (`bot.sync.links`) -----------
    def linked_companies(self, team_id: str, connection_id: str) -> str:
        """Set of the account ids written to Marketo as companies: people may link to them."""
        return self._team(team_id, "links", connection_id, "companies")

    def company_waiters(self, team_id: str, connection_id: str, account_id: str) -> str:
        """Set of `entity:id` of the people written before their account: linked once it is written."""
        return self._team(team_id, "links", connection_id, "waiting", account_id)

    def company_awaited(self, team_id: str, connection_id: str) -> str:
        """Hash of `entity:id` → the account a waiting person waits for now (it may have moved since)."""
        return self._team(team_id, "links", connection_id, "awaited")

    def sales_persons(self, team_id: str, connection_id: str) -> str:
        """Set of the Dynamics user ids upserted as Marketo sales persons (expires daily: names refresh)."""
        return self._team(team_id, "links", connection_id, "owners")

    def role_opportunities(self, team_id: str, connection_id: str) -> str:
        """Hash of Dataverse connection id → the opportunity it is a contact role of (a deleted one is known
        by its id only)."""
        return self._team(team_id, "links", connection_id, "roles")

    def incremental_stats(self, team_id: str, connection_id: str) -> str:
        return self._team(team_id, "incremental", connection_id)

    # -- webhooks: Marketo's "Call Webhook" and Dataverse's change notifications ---------------------
    def person_lock(self, team_id: str, connection_id: str, lead_id: int) -> str:
        """Held while "Sync Person to Microsoft" handles one Marketo person (no duplicate lead)."""
        return self._team(team_id, "person-lock", connection_id, str(lead_id))

    def dynamics_webhook(self, team_id: str, connection_id: str) -> str:
        """The Dataverse webhook registered for the connection and its key (sealed)."""
        return self._team(team_id, "dv-webhook", connection_id)

    def dynamics_webhooks_pattern(self) -> str:
        """SCAN pattern for every team's `dynamics_webhook` keys."""
        return f"{_glob_escape(self.prefix)}:*:dv-webhook:*"

    def change_queued(self, team_id: str, connection_id: str, entity: str) -> str:
        """Exists while a job applying an entity's notified changes waits in the queue (coalescing)."""
        return self._team(team_id, "change-queued", connection_id, entity)

    # -- the ongoing sync's status: figures, records written per minute, the on/off switch ----------
    def ongoing_figures(self, team_id: str, connection_id: str, entity: str) -> str:
        return self._team(team_id, "ongoing", connection_id, entity, "figures")

    def ongoing_written(self, team_id: str, connection_id: str, entity: str) -> str:
        """Hash of minute (Unix time // 60) → records written then, for the last day."""
        return self._team(team_id, "ongoing", connection_id, entity, "written")

    def ongoing_switch(self, team_id: str, connection_id: str) -> str:
        return self._team(team_id, "ongoing", connection_id, "switch")

    def sync_errors(self, team_id: str, connection_id: str, entity: str) -> str:
        """Hash of the ongoing sync's failed records of one entity: record id -> `SyncError` JSON."""
        return self._team(team_id, "errors", connection_id, entity)

    def sync_errors_by_time(self, team_id: str, connection_id: str, entity: str) -> str:
        """Sorted set of the failed record ids by their last failure time."""
        return self._team(team_id, "errors", connection_id, entity, "at")

    def sync_errors_retry(self, team_id: str, connection_id: str, entity: str) -> str:
        """Sorted set of the failed record ids by attempts made (the retry queue)."""
        return self._team(team_id, "errors", connection_id, entity, "attempts")

    def sync_errors_resolved(self, team_id: str, connection_id: str) -> str:
        """Hash of counters: `{entity}:retried_ok`, `{entity}:deleted` (errors resolved by retries)."""
        return self._team(team_id, "errors", connection_id, "resolved")

    # -- the Marketo → Dynamics write-back -----------------------------------------------------------
    def write_back_token(self, team_id: str, connection_id: str) -> str:
        """Marketo's paging token where the next write-back page starts (checkpointed per applied page)."""
        return self._team(team_id, "write-back", connection_id, "token")

    def write_back_stats(self, team_id: str, connection_id: str) -> str:
        """Hash: the write-back's last run (`at`, `status`) and its counts."""
        return self._team(team_id, "write-back", connection_id, "stats")

    def write_back_handed_over(self, team_id: str, connection_id: str, entity: str) -> str:
        """Set of record ids the write-back changed over a person's edit in Dynamics: the next Dynamics →
        Marketo cycle sends them although the sync user modified them last."""
        return self._team(team_id, "write-back", connection_id, "handed-over", entity)

    def conflicts(self, team_id: str, connection_id: str, entity: str) -> str:
        """List of the latest collisions of one entity (`Conflict` JSON, newest first, bounded)."""
        return self._team(team_id, "conflicts", connection_id, entity)

    def alert_state(self, team_id: str, connection_id: str) -> str:
        """Hash of the connection's alert conditions: condition -> `AlertState` JSON."""
        return self._team(team_id, "alerts", connection_id)

    def active_runs(self) -> str:
        """Set of `team:run` members the sweeper watches."""
        return self._global("sync", "active-runs")

    def incremental_schedule(self) -> str:
        """Sorted set of `team:connection` members by next due time."""
        return self._global("sync", "incremental")

    def sweeping(self) -> str:
        return self._global("sync", "sweeping")

    # -- workers ---------------------------------------------------------------------------------
    def worker_heartbeat(self, worker: str) -> str:
        """Exists while the worker named `worker` (`WORKER_NAME`) runs its maintenance thread."""
        return self._global("workers", worker, "heartbeat")

    # -- Marketo (one subscription, shared by every team) ------------------------------------------
    def marketo_limiter(self, part: str) -> str:
        """`window`, `slots`, `backoff` or `day:YYYYMMDD` of the shared Marketo limiter."""
        return self._global("marketo", "limiter", part)

    def marketo_bulk_slots(self) -> str:
        """Sorted set of this product's jobs in Marketo's bulk import queue, by lease deadline (ms)."""
        return self._global("marketo", "bulk-imports")

    def marketo_token(self, instance: str) -> str:
        return self._global("marketo", "token", instance)

    def marketo_tokens_pattern(self) -> str:
        """SCAN pattern for the cached Marketo token of every instance."""
        return _glob_escape(self.marketo_token("")) + "*"

    def dynamics_lock(self, instance: str) -> str:
        """The Dynamics org this Marketo instance is connected to (a `DynamicsLock`)."""
        return self._global("marketo", "dynamics-org", instance)

    def marketo_write_requests(self) -> str:
        """Sorted set of the `requestId`s of our Marketo lead writes, by time (the write-back's echo filter)."""
        return self._global("marketo", "write-requests")

    def marketo_deleted_field(self) -> str:
        return self._global("marketo", "deleted-field")

    # -- Slack installations (multi-workspace OAuth) ---------------------------------------------
    def installation(self, owner: str, *parts: str) -> str:
        """`owner` is `team:{T}` for a workspace install, `enterprise:{E}` for an org-wide one."""
        return self._global("slack", "install", owner, *parts)

    def installations_pattern(self) -> str:
        """SCAN pattern for every installation key (latest, per user, bot and history)."""
        return _glob_escape(self._global("slack", "install")) + ":*"

    def team_enterprise(self, team_id: str) -> str:
        """The enterprise whose org-wide install serves this workspace."""
        return self._global("slack", "team-enterprise", team_id)

    def oauth_state(self, state: str) -> str:
        return self._global("slack", "oauth-state", state)

    def token_rotation(self, owner: str) -> str:
        """Held while one process refreshes an installation's bot token."""
        return self._global("slack", "token-rotation", owner)

    # -- per-workspace settings --------------------------------------------------------------------
    def team_settings(self, team_id: str) -> str:
        return self._team(team_id, "settings")

    # -- RQ --------------------------------------------------------------------------------------
    @property
    def rq_prefix(self) -> str:
        """What every RQ key the product creates through `bot.store.jobs` starts with."""
        return f"{self.prefix}:rq"
