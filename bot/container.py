"""The one composition root: everything a process holds, built once by its entry point and passed down.

`serve`, `socket`, `worker` and `demo` each build one `Container` from their settings; nothing
else builds clients or reads the environment. Web processes and workers share nothing in memory;
whatever must be shared (the Marketo limiter, the Marketo token, state) lives in Redis, so any
number of them can run. Clients are built on first use, so a process pays only for what it uses.
"""

from __future__ import annotations

import functools
import threading

from rq import Queue
from slack_sdk import WebClient
from slack_sdk.http_retry.builtin_handlers import ConnectionErrorRetryHandler, RateLimitErrorRetryHandler

from bot.approval_effects import ApprovalEffects
from bot.approvals import ApprovalService
from bot.audit import AuditLog
from bot.background import AckGate, Background
from bot.config import Settings
from bot.crypto import SecretBox
from bot.dynamics.auth import sign_in
from bot.dynamics.client import DataverseClient
from bot.dynamics.egress import HostAllowlist
from bot.dynamics.metadata import MetadataCache
from bot.errors import FlowError
from bot.marketo.client import MarketoClient
from bot.marketo.instance import instance_id
from bot.marketo.limiter import SharedLimiter
from bot.notify import Notifier
from bot.roles import TeamRoles
from bot.slack_clients import InstalledWorkspaces, OneWorkspace, SlackClients
from bot.store import Health, Redis, Store, connect, jobs
from bot.sync.ports import SyncServices
from bot.tls import ssl_context
from bot.workspace_settings import WorkspaceSettings

SYNC_QUEUE = "sync"
# A concurrency slot held by a process that died is freed after this long: longer than a Marketo
# call can take (client timeout 30 s), short enough that a killed worker does not stall the others.
MARKETO_SLOT_LEASE_SECONDS = 45.0


class Container:
    def __init__(self, settings: Settings, redis_client: Redis | None = None) -> None:
        self.settings = settings
        self._own_redis = redis_client is None
        self.redis = redis_client or connect(settings.required("REDIS_URL"))
        self.store = Store(self.redis, SecretBox(settings.secret("ENCRYPTION_KEY")), prefix=settings.REDIS_KEY_PREFIX,
                           marketo_instance=instance_id(settings.MARKETO_BASE_URL) if settings.MARKETO_BASE_URL else "")
        self._marketo_lock = threading.Lock()

    def probe_health(self, timeout: float) -> Health:
        """Redis as the probes see it: a client of its own that gives up after `timeout` (a slow Redis
        must not hang `/readyz`), or the client handed in (the demo's embedded store, tests)."""
        if not self._own_redis:
            return self.store.health
        return Health.connect(self.settings.required("REDIS_URL"), self.settings.REDIS_KEY_PREFIX, timeout=timeout)

    # -- Slack -------------------------------------------------------------------------------------
    def slack_client(self, token: str | None) -> WebClient:
        """A Web API client on SLACK_API_URL, trusting CA_BUNDLE, with retries."""
        return WebClient(
            token=token,
            base_url=self.settings.SLACK_API_URL,
            ssl=ssl_context(self.settings.CA_BUNDLE),
            timeout=15,
            retry_handlers=[ConnectionErrorRetryHandler(max_retry_count=2), RateLimitErrorRetryHandler(max_retry_count=3)],
        )

    @functools.cached_property
    def slack(self) -> WebClient:
        """Bolt's client: SLACK_BOT_TOKEN's, or token-less with Slack OAuth (Bolt then gives each request
        a copy with its installation's token)."""
        return self.slack_client(None if self.settings.oauth_enabled else self.settings.secret("SLACK_BOT_TOKEN"))

    @functools.cached_property
    def slack_clients(self) -> SlackClients:
        """Each workspace's client, for calls made outside a Slack request."""
        s = self.settings
        if not s.oauth_enabled:
            return OneWorkspace(self.slack)
        return InstalledWorkspaces(self.store.installations, self.slack_client, client_id=s.SLACK_CLIENT_ID or "",
                                   client_secret=s.secret("SLACK_CLIENT_SECRET"),
                                   rotate_minutes_before=s.SLACK_TOKEN_ROTATION_MINUTES)

    @functools.cached_property
    def workspaces(self) -> WorkspaceSettings:
        return WorkspaceSettings(self.store, self.settings)

    @functools.cached_property
    def notifier(self) -> Notifier:
        return Notifier(self.slack_clients, self.settings, self.store, limiter=self.marketo_limiter())

    # -- Marketo -------------------------------------------------------------------------------------
    def marketo_limiter(self) -> SharedLimiter:
        s = self.settings
        return SharedLimiter(
            self.store.marketo_limiter_state(),
            calls_per_window=s.MARKETO_CALLS_PER_WINDOW,
            window_seconds=s.MARKETO_WINDOW_SECONDS,
            max_concurrency=min(s.MARKETO_MAX_CONCURRENCY, 10),
            lease_seconds=MARKETO_SLOT_LEASE_SECONDS,
        )

    def marketo(self) -> MarketoClient:
        """One Marketo client per process (thread-safe), sharing limiter and token through Redis."""
        with self._marketo_lock:
            return self._marketo

    @functools.cached_property
    def _marketo(self) -> MarketoClient:
        s = self.settings
        return MarketoClient(
            s.MARKETO_BASE_URL or "",
            s.MARKETO_CLIENT_ID or "",
            s.secret("MARKETO_CLIENT_SECRET"),
            limiter=self.marketo_limiter(),
            token_cache=self.store.marketo_token(s.MARKETO_BASE_URL or "", s.MARKETO_CLIENT_ID or ""),
            ca_bundle=s.CA_BUNDLE,
            daily_quota=s.MARKETO_DAILY_QUOTA,
            write_log=self.store.marketo_writes,
        )

    # -- Dynamics ------------------------------------------------------------------------------------
    def dataverse(self, team_id: str, connection_id: str) -> DataverseClient:
        """A signed-in Dataverse client for a saved connection (credentials decrypted here only)."""
        credentials = self.store.load_credentials(team_id, connection_id)
        if credentials is None:
            raise FlowError("The Dynamics credentials for this connection are gone. Run /connect-dynamics again.")
        return DataverseClient(credentials.url, sign_in(credentials, self.settings), ca_bundle=self.settings.CA_BUNDLE,
                               host_allowlist=HostAllowlist(self.settings.DYNAMICS_HOST_ALLOWLIST))

    @functools.cached_property
    def metadata(self) -> MetadataCache:
        return MetadataCache(self.store)

    # -- jobs ----------------------------------------------------------------------------------------
    @functools.cached_property
    def queue(self) -> Queue:
        """The sync queue (RQ keys under the store's prefix)."""
        return jobs.queue(self.redis, self.settings.REDIS_KEY_PREFIX, SYNC_QUEUE)

    @functools.cached_property
    def sync(self) -> SyncServices:
        """What sync jobs in this process run with."""
        return SyncServices(settings=self.settings, store=self.store, queue=self.queue,
                            dataverse=self.dataverse, marketo=self.marketo, notifier=self.notifier)

    @functools.cached_property
    def ack_gate(self) -> AckGate:
        """The Slack requests the web front is acking: after-ack work waits for them."""
        return AckGate()

    @functools.cached_property
    def background(self) -> Background:
        """Slow work after a Slack ack."""
        return Background(gate=self.ack_gate)

    # -- people and decisions ------------------------------------------------------------------------
    @functools.cached_property
    def roles(self) -> TeamRoles:
        return TeamRoles(self.workspaces)

    @functools.cached_property
    def audit(self) -> AuditLog:
        return AuditLog(self.store)

    @functools.cached_property
    def approvals(self) -> ApprovalService:
        effects = ApprovalEffects(store=self.store, clients=self.slack_clients, notifier=self.notifier, marketo=self.marketo,
                                  queue=self.queue, audit=self.audit)
        return ApprovalService(self.store, required=self.settings.APPROVALS_REQUIRED,
                               ttl_hours=self.settings.APPROVAL_TTL_HOURS, roles=self.roles, effects=effects)
