"""Builds the clients every process needs from the settings, once per process.

Web processes and workers share nothing in memory; whatever must be shared (the Marketo
limiter, the Marketo token, state) lives in Redis, so any number of them can run.
"""

from __future__ import annotations

import functools
import threading

from rq import Queue
from slack_sdk import WebClient
from slack_sdk.http_retry.builtin_handlers import ConnectionErrorRetryHandler, RateLimitErrorRetryHandler

from bot.config import Settings
from bot.crypto import SecretBox
from bot.dynamics.auth import sign_in
from bot.dynamics.client import DataverseClient
from bot.dynamics.egress import HostAllowlist
from bot.errors import FlowError
from bot.marketo.client import MarketoClient
from bot.marketo.instance import instance_id
from bot.marketo.limiter import SharedLimiter
from bot.notify import Notifier
from bot.store import Redis, Store, connect, jobs
from bot.tls import ssl_context

SYNC_QUEUE = "sync"
# A concurrency slot held by a process that died is freed after this long: longer than a Marketo
# call can take (client timeout 30 s), short enough that a killed worker does not stall the others.
MARKETO_SLOT_LEASE_SECONDS = 45.0


class Services:
    def __init__(self, settings: Settings, redis_client: Redis | None = None) -> None:
        self.settings = settings
        self.redis = redis_client or connect(settings.require(("REDIS_URL",)).REDIS_URL)
        self.store = Store(self.redis, SecretBox(settings.secret("ENCRYPTION_KEY")), prefix=settings.REDIS_KEY_PREFIX,
                           marketo_instance=instance_id(settings.MARKETO_BASE_URL) if settings.MARKETO_BASE_URL else "")
        self._lock = threading.Lock()
        self._marketo: MarketoClient | None = None

    @classmethod
    def from_env(cls) -> Services:
        return cls(Settings())

    # -- Slack -------------------------------------------------------------------------------------
    @functools.cached_property
    def slack(self) -> WebClient:
        return WebClient(
            token=self.settings.secret("SLACK_BOT_TOKEN"),
            base_url=self.settings.SLACK_API_URL,
            ssl=ssl_context(self.settings.CA_BUNDLE),
            timeout=15,
            retry_handlers=[ConnectionErrorRetryHandler(max_retry_count=2), RateLimitErrorRetryHandler(max_retry_count=3)],
        )

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
        with self._lock:
            if self._marketo is None:
                s = self.settings
                self._marketo = MarketoClient(
                    s.MARKETO_BASE_URL or "",
                    s.MARKETO_CLIENT_ID or "",
                    s.secret("MARKETO_CLIENT_SECRET"),
                    limiter=self.marketo_limiter(),
                    token_cache=self.store.marketo_token(s.MARKETO_BASE_URL or "", s.MARKETO_CLIENT_ID or ""),
                    ca_bundle=s.CA_BUNDLE,
                    daily_quota=s.MARKETO_DAILY_QUOTA,
                )
            return self._marketo

    # -- Dynamics ------------------------------------------------------------------------------------
    def dataverse(self, team_id: str, connection_id: str) -> DataverseClient:
        """A signed-in Dataverse client for a saved connection (credentials decrypted here only)."""
        credentials = self.store.load_credentials(team_id, connection_id)
        if credentials is None:
            raise FlowError("The Dynamics credentials for this connection are gone. Run /connect-dynamics again.")
        return DataverseClient(credentials.url, sign_in(credentials, self.settings), ca_bundle=self.settings.CA_BUNDLE,
                               host_allowlist=HostAllowlist(self.settings.DYNAMICS_HOST_ALLOWLIST))

    # -- jobs ----------------------------------------------------------------------------------------
    def queue(self, name: str = SYNC_QUEUE) -> Queue:
        return jobs.queue(self.redis, self.settings.REDIS_KEY_PREFIX, name)

    def notifier(self) -> Notifier:
        return Notifier(self.slack, self.settings, self.store, limiter=self.marketo_limiter())
