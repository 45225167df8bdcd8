"""Settings, read from the environment by pydantic-settings.

The names are the same everywhere (code, README, manifest, Dockerfile); every process reads the
same class and asks `require()` for the settings it cannot run without, so a missing one stops start-up
with one line that names it and says what it is for.
"""

from __future__ import annotations

import socket
from collections.abc import Iterable
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

PURPOSE: dict[str, str] = {
    "SLACK_BOT_TOKEN": "the bot token (xoxb-...) from the Slack app's OAuth page, for one workspace "
    "(or set SLACK_CLIENT_ID, SLACK_CLIENT_SECRET and SLACK_STATE_SECRET to install in any workspace)",
    "SLACK_CLIENT_ID": "the client id from the Slack app's Basic Information page, for installs through /slack/install",
    "SLACK_CLIENT_SECRET": "the client secret from the Slack app's Basic Information page, "
    "for installs through /slack/install",
    "SLACK_STATE_SECRET": "a random secret that signs the OAuth state of installs through /slack/install "
    "(make one: python -c 'import secrets; print(secrets.token_urlsafe(32))')",
    "SLACK_SIGNING_SECRET": "the signing secret from the Slack app's Basic Information page; verifies requests",
    "SLACK_APP_TOKEN": "an app-level token (xapp-...) with connections:write, for Socket Mode",
    "REDIS_URL": "where flows, approvals, sync state and job queues live",
    "ENCRYPTION_KEY": "a Fernet key that encrypts Dynamics credentials at rest "
    "(make one: python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())')",
    "MARKETO_BASE_URL": "the Marketo instance root, e.g. https://123-ABC-456.mktorest.com",
    "MARKETO_CLIENT_ID": "the client id of the Marketo LaunchPoint custom service",
    "MARKETO_CLIENT_SECRET": "the client secret of the Marketo LaunchPoint custom service",
    "MARKETO_WEBHOOK_SECRET": "a random secret Marketo's webhooks send in the X-Webhook-Token header "
    "(make one: python -c 'import secrets; print(secrets.token_urlsafe(32))')",
}

WEB_REQUIRED = ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "REDIS_URL", "ENCRYPTION_KEY",
                "MARKETO_BASE_URL", "MARKETO_CLIENT_ID", "MARKETO_CLIENT_SECRET")
SOCKET_REQUIRED = ("SLACK_BOT_TOKEN", "SLACK_APP_TOKEN", "REDIS_URL", "ENCRYPTION_KEY",
                   "MARKETO_BASE_URL", "MARKETO_CLIENT_ID", "MARKETO_CLIENT_SECRET")
WORKER_REQUIRED = ("SLACK_BOT_TOKEN", "REDIS_URL", "ENCRYPTION_KEY",
                   "MARKETO_BASE_URL", "MARKETO_CLIENT_ID", "MARKETO_CLIENT_SECRET")

# Any of these switches the bot to installs through Slack OAuth (then all three are needed, and
# the bot tokens come from the installations instead of SLACK_BOT_TOKEN).
OAUTH_SETTINGS = ("SLACK_CLIENT_ID", "SLACK_CLIENT_SECRET", "SLACK_STATE_SECRET")


class MissingSetting(SystemExit):
    """Raised (as a clean exit) when a process starts without a setting it needs."""


def _id_list(value: object) -> list[str]:
    if value is None or value == "":
        return []
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    if not isinstance(value, Iterable):
        raise TypeError(f"not a list of ids: {value!r}")
    return list(value)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=None, extra="ignore", case_sensitive=True)

    SLACK_BOT_TOKEN: SecretStr | None = None
    SLACK_SIGNING_SECRET: SecretStr | None = None
    SLACK_APP_TOKEN: SecretStr | None = None
    SLACK_API_URL: str = "https://slack.com/api/"
    SLACK_CLIENT_ID: str | None = None
    SLACK_CLIENT_SECRET: SecretStr | None = None
    SLACK_STATE_SECRET: SecretStr | None = None
    SLACK_TOKEN_ROTATION_MINUTES: int = Field(default=120, ge=1)  # refresh a rotating bot token this long before expiry
    REDIS_URL: str | None = None
    REDIS_KEY_PREFIX: str = "cd"
    ENCRYPTION_KEY: SecretStr | None = None
    ADMIN_USER_IDS: Annotated[list[str], NoDecode] = Field(default_factory=list)
    TEAM_LEAD_USER_IDS: Annotated[list[str], NoDecode] = Field(default_factory=list)
    APPROVALS_REQUIRED: int = Field(default=1, ge=1)
    APPROVAL_TTL_HOURS: float = Field(default=24, gt=0)
    APPROVAL_CHANNEL: str | None = None
    NOTIFY_CHANNEL: str | None = None
    # how stale a web process's copy of a workspace's admins and leads may be (0: read Redis every time)
    TEAM_SETTINGS_CACHE_SECONDS: float = Field(default=5, ge=0)
    ENTRA_AUTHORITY_HOST: str = "login.microsoftonline.com"
    ENTRA_TENANT: str | None = None
    DYNAMICS_SOLUTION_NAME: str = "Marketo Lead Management"
    DYNAMICS_SYNC_ROLE: str = "Marketo Sync User"
    CA_BUNDLE: str | None = None
    # hosts (or host:port) the bot may reach for Dynamics although they resolve to a non-public address
    DYNAMICS_HOST_ALLOWLIST: Annotated[list[str], NoDecode] = Field(default_factory=list)
    MARKETO_BASE_URL: str | None = None
    MARKETO_CLIENT_ID: str | None = None
    MARKETO_CLIENT_SECRET: SecretStr | None = None
    MARKETO_CALLS_PER_WINDOW: int = Field(default=100, ge=1)
    MARKETO_WINDOW_SECONDS: float = Field(default=20, gt=0)
    MARKETO_MAX_CONCURRENCY: int = Field(default=5, ge=1, le=10)
    MARKETO_DAILY_QUOTA: int = Field(default=50_000, ge=1)
    # Marketo's "Call Webhook" flow steps send it as X-Webhook-Token; unset: POST /marketo/webhook answers 404
    MARKETO_WEBHOOK_SECRET: SecretStr | None = None
    # Where Dataverse reaches this deployment's web process (https://bot.example.com); set: changes in Dynamics
    # arrive by webhook within seconds (and the cycles stay as the safety net); unset: they are polled only
    PUBLIC_URL: str | None = None
    SMTP_URL: str | None = None
    SMTP_FROM: str = "connect-dynamics@localhost"
    # The web process serves Slack and webhooks from outside its container: it listens on every
    # interface unless told otherwise (a host with a local proxy in front sets 127.0.0.1), hence
    # the B104 exception on this one line.
    HOST: str = "0.0.0.0"  # nosec B104
    PORT: int = 3000
    WEB_CONCURRENCY: int = Field(default=1, ge=1)
    WORKER_NAME: str = Field(default_factory=socket.gethostname, min_length=1)  # whose heartbeat `probe worker` checks
    INCREMENTAL_SYNC_MINUTES: float = Field(default=5, gt=0)
    PROGRESS_UPDATE_SECONDS: float = Field(default=10, ge=0)
    SYNC_LEASE_SECONDS: float = Field(default=30, gt=0)  # a dead worker's sync resumes after about this
    SYNC_SWEEP_SECONDS: float = Field(default=10, gt=0)  # how often workers look for dead sync jobs
    # An incremental cycle that would mark deleted, or overwrite, more records of an entity than this
    # holds for a team lead; unset: max(1000, 10% of the entity's records) (`bot.sync.brake.limit_for`).
    MASS_CHANGE_LIMIT: int | None = Field(default=None, ge=1)
    SYNC_RETRY_ATTEMPTS: int = Field(default=5, ge=1)  # attempts per failed record before it stays an error
    ALERT_FAILURE_RATE: float = Field(default=0.05, gt=0, le=1)  # share of a cycle's records failing that alerts
    SYNC_WRITERS: int | None = Field(default=None, ge=1, le=10)  # writer threads per entity job (default: MARKETO_MAX_CONCURRENCY)
    # Initial loads (and backfills) of leads or contacts with more records than this go through Marketo's
    # Bulk Import instead of REST; 0: always, -1: never (`bot.sync.bulk`).
    BULK_IMPORT_MIN_RECORDS: int = Field(default=20_000, ge=-1)
    BULK_IMPORT_POLL_SECONDS: float = Field(default=5, gt=0)  # shortest wait between status polls of an import
    BULK_IMPORT_PART_BYTES: int = Field(default=9_990_000, ge=1000, le=9_990_000)  # largest file per import job
    METRICS_PORT: int = Field(default=9100, ge=0, le=65535)  # each worker's Prometheus port; 0: none
    LOG_FORMAT: Literal["text", "json"] = "text"  # json: one object per line, with run, entity and team ids

    @field_validator("ADMIN_USER_IDS", "TEAM_LEAD_USER_IDS", "DYNAMICS_HOST_ALLOWLIST", mode="before")
    @classmethod
    def _split_ids(cls, value: object) -> list[str]:
        return _id_list(value)

    @field_validator("SMTP_URL")
    @classmethod
    def _smtp_url(cls, value: str | None) -> str | None:
        """`smtp://host:port` or `smtps://host:port`. Whether credentials in an `smtp://` URL can be
        sent (only after STARTTLS) is known only when the server answers, so that is checked per email."""
        if not value:
            return value
        url = urlsplit(value)
        try:
            port_ok = url.port is None or url.port > 0
        except ValueError:
            port_ok = False
        if url.scheme not in ("smtp", "smtps") or not url.hostname or not port_ok:
            raise ValueError("SMTP_URL must look like smtp://host:port or smtps://user:password@host:port")
        return value

    @field_validator("PUBLIC_URL")
    @classmethod
    def _public_url(cls, value: str | None) -> str | None:
        """An absolute http(s) URL without query or fragment, kept without its trailing slash."""
        if not value:
            return None
        url = urlsplit(value.strip())
        if url.scheme not in ("https", "http") or not url.hostname or url.query or url.fragment:
            raise ValueError("PUBLIC_URL must look like https://bot.example.com (no query or fragment)")
        return value.strip().rstrip("/")

    @property
    def oauth_enabled(self) -> bool:
        """Installs through Slack OAuth (any workspace) rather than one workspace's SLACK_BOT_TOKEN."""
        return any(getattr(self, name) not in (None, "") for name in OAUTH_SETTINGS)

    def require(self, names: tuple[str, ...]) -> Settings:
        """Exit with one line naming the first missing setting and what it is for. With Slack OAuth on,
        the three OAuth settings stand in for SLACK_BOT_TOKEN."""
        if self.oauth_enabled and "SLACK_BOT_TOKEN" in names:
            names = tuple(name for name in names if name != "SLACK_BOT_TOKEN") + OAUTH_SETTINGS
        for name in names:
            if getattr(self, name) in (None, ""):
                raise MissingSetting(f"connect-dynamics: missing setting {name}: {PURPOSE[name]}.")
        return self

    def required(self, name: str) -> str:
        """One setting that must be given, as text (a missing one exits as `require` does)."""
        return self.require((name,)).secret(name)

    def secret(self, name: str) -> str:
        value = getattr(self, name)
        if value is None:
            return ""
        return value.get_secret_value() if isinstance(value, SecretStr) else str(value)
