"""The three emulators together (Entra ID + Dataverse, Marketo, Slack) and the settings that
point the bot at them. Used by the demo, the end-to-end tests and the benchmarks."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from cryptography.fernet import Fernet

from sandbox.dynamics import DynamicsEmulator, EmulatedUser
from sandbox.marketo import MarketoEmulator
from sandbox.slack import SlackEmulator

SYNC_USER = "sync@contoso.com"
SYNC_PASSWORD = "Passw0rd!"
BOT_TOKEN = "xoxb-emulator-bot-token"
APP_TOKEN = "xapp-emulator-app-token"
SIGNING_SECRET = "emulator-signing-secret"
ADMIN = "U0ADMIN01"
LEADS = ("U0LEAD001", "U0LEAD002", "U0LEAD003")
APPROVAL_CHANNEL = "C0APPROVAL"
NOTIFY_CHANNEL = "C0NOTIFY0"


@dataclass
class Stack:
    dynamics: DynamicsEmulator
    marketo: MarketoEmulator
    slack: SlackEmulator
    encryption_key: str = field(default_factory=lambda: Fernet.generate_key().decode())

    def start(self) -> Stack:
        self.dynamics.start()
        self.marketo.start()
        self.slack.start()
        return self

    def stop(self) -> None:
        for emulator in (self.slack, self.marketo, self.dynamics):
            emulator.stop()

    def __enter__(self) -> Stack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def env(self, **overrides: Any) -> dict[str, str]:
        """The bot's settings (their environment names) pointing at these emulators."""
        settings = {
            "SLACK_BOT_TOKEN": BOT_TOKEN,
            "SLACK_SIGNING_SECRET": SIGNING_SECRET,
            "SLACK_APP_TOKEN": APP_TOKEN,
            "SLACK_API_URL": self.slack.api_url,
            "ENCRYPTION_KEY": self.encryption_key,
            "ADMIN_USER_IDS": ADMIN,
            "TEAM_LEAD_USER_IDS": ",".join(LEADS),
            "APPROVAL_CHANNEL": APPROVAL_CHANNEL,
            "NOTIFY_CHANNEL": NOTIFY_CHANNEL,
            "ENTRA_AUTHORITY_HOST": self.dynamics.authority_host,
            "CA_BUNDLE": self.dynamics.ca_path,
            "DYNAMICS_HOST_ALLOWLIST": urlsplit(self.dynamics.url).netloc,
            "MARKETO_BASE_URL": self.marketo.url,
            "MARKETO_CLIENT_ID": self.marketo.client_id,
            "MARKETO_CLIENT_SECRET": "emulator-secret",
            "MARKETO_CALLS_PER_WINDOW": str(self.marketo.calls_per_window),
            "MARKETO_WINDOW_SECONDS": str(self.marketo.window_seconds),
            "MARKETO_MAX_CONCURRENCY": "5",
            "PROGRESS_UPDATE_SECONDS": "0.2",  # short: a run's end waits for the next update slot
            "METRICS_PORT": "0",  # a worker here opens no port; a test that scrapes one sets it
        }
        settings.update({key: str(value) for key, value in overrides.items()})
        return settings


def build_stack(
    *,
    leads: int = 200,
    contacts: int = 100,
    accounts: int = 30,
    opportunities: int = 20,
    marketo_window_seconds: float = 2.0,
    dynamics: dict[str, Any] | None = None,
    marketo: dict[str, Any] | None = None,
    slack: dict[str, Any] | None = None,
) -> Stack:
    """Emulators with a sync user, the Marketo solution, the `new_synctomkto` filter on leads and
    opportunities, opportunities with contact roles and some duplicate emails; Marketo's window scaled down so a demo or test finishes quickly."""
    dynamics_options: dict[str, Any] = {
        "users": [EmulatedUser(username=SYNC_USER, password=SYNC_PASSWORD)],
        "records": {"lead": leads, "contact": contacts, "account": accounts, "opportunity": opportunities,
                    "connection": 2 * opportunities},  # two contact roles per opportunity
        "sync_filter": {"lead": "new_synctomkto", "opportunity": "new_synctomkto"},
        "extra_attributes": {"lead": 3},
        "duplicate_fraction": 0.02,
        **(dynamics or {}),
    }
    marketo_options: dict[str, Any] = {
        "client_secret": "emulator-secret",
        "calls_per_window": 100,
        "window_seconds": marketo_window_seconds,
        **(marketo or {}),
    }
    return Stack(
        dynamics=DynamicsEmulator(**dynamics_options),
        marketo=MarketoEmulator(**marketo_options),
        slack=SlackEmulator(**{"bot_token": BOT_TOKEN, "app_token": APP_TOKEN, **(slack or {})}),
    )
