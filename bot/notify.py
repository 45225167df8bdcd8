"""Slack posts, DMs and email about a sync run.

The progress post is updated in place at most once every `PROGRESS_UPDATE_SECONDS` per message.
Entity jobs on different workers all report progress, so the throttle lives in Redis (`SET NX PX`),
not in memory. Message content comes from `bot.views.progress`; this module only delivers it.
"""

from __future__ import annotations

import logging
import os
import smtplib
import time
from email.message import EmailMessage
from typing import Any
from urllib.parse import unquote, urlsplit

from bot.alerts import Cause
from bot.config import Settings
from bot.errors import BotError
from bot.models import SyncRun
from bot.slack_clients import SlackClients
from bot.store import Store
from bot.sync.report import failure_csv_file, summary_text
from bot.tls import ssl_context
from bot.views.alerts import alert_message, recovery_message
from bot.views.kit import Message
from bot.views.progress import paused_message, progress_message, summary_message
from bot.workspace_settings import WorkspaceSettings

log = logging.getLogger(__name__)

SMTP_TIMEOUT = 30
THROTTLE_MARGIN_MS = 50  # network jitter must not bring two updates closer than the interval


class EmailNotConfigured(BotError):
    user_message = "Email is not set up (SMTP_URL is empty), so the completion email was not sent."


class CredentialsNeedTls(BotError):
    """SMTP_URL carries a username and password but the connection could not be encrypted."""

    def __init__(self, host: str, port: int) -> None:
        super().__init__(
            f"The completion email was not sent: the mail server {host}:{port} does not offer STARTTLS, and "
            "the SMTP password is never sent unencrypted. Use smtps:// (TLS from the start) or a server that "
            "offers STARTTLS, or remove the username and password from SMTP_URL if the server needs none."
        )


class Notifier:
    def __init__(self, clients: SlackClients, settings: Settings, store: Store, *, limiter: Any | None = None) -> None:
        """`clients` gives each workspace's Slack client; its channels come from its settings."""
        self.clients = clients
        self.settings = settings
        self.store = store
        self.workspaces = WorkspaceSettings(store, settings)
        self.limiter = limiter  # bot.marketo.limiter.SharedLimiter, for the daily quota left

    # -- the live progress message -------------------------------------------------------------------------
    def _claim_update(self, team_id: str, run_id: str, *, wait: bool) -> bool:
        """Take the per-message update slot; with `wait`, wait (≤ one interval) for it to free up."""
        if self.settings.PROGRESS_UPDATE_SECONDS <= 0:
            return True
        interval_ms = int(self.settings.PROGRESS_UPDATE_SECONDS * 1000) + THROTTLE_MARGIN_MS
        deadline = time.monotonic() + self.settings.PROGRESS_UPDATE_SECONDS + 1
        while True:
            remaining = self.store.take_progress_slot(team_id, run_id, interval_ms)
            if not remaining:
                return True
            if not wait or time.monotonic() > deadline:
                return False
            time.sleep(min(max(remaining, 10), 1000) / 1000)

    def progress(self, team_id: str, run_id: str, *, force: bool = False) -> bool:
        """Post or update the progress message; False when throttled. `force` waits for the slot."""
        channel = self.workspaces.get(team_id).notify_channel
        run = self.store.get_run(team_id, run_id)
        if not channel or run is None:
            return False
        if run.progress_message is None:
            return self._post_progress(run, channel)
        msg_channel, ts = run.progress_message
        if not self._claim_update(team_id, run_id, wait=force):
            return False
        run = self.store.get_run(team_id, run_id) or run  # the freshest counts, read after the wait
        self.clients.for_team(team_id).chat_update(channel=msg_channel, ts=ts, **progress_message(run).to_dict())
        return True

    def _post_progress(self, run: SyncRun, channel: str) -> bool:
        if not self.store.claim_progress_post(run.team_id, run.id):
            return False  # another worker is posting it right now
        response = self.clients.for_team(run.team_id).chat_postMessage(channel=channel,
                                                                       **progress_message(run).to_dict())
        self.store.take_progress_slot(run.team_id, run.id,
                                      int(self.settings.PROGRESS_UPDATE_SECONDS * 1000) + THROTTLE_MARGIN_MS)

        def put(current: SyncRun) -> SyncRun:
            current.progress_message = (response["channel"], response["ts"])
            return current

        self.store.update_run(run.team_id, run.id, put)
        return True

    # -- pause and completion ------------------------------------------------------------------------------
    def paused(self, team_id: str, run_id: str) -> None:
        """The run paused (quota, access): say why, where it shows, and DM the requester a Resume button."""
        run = self.store.get_run(team_id, run_id)
        if run is None:
            return
        self.progress(team_id, run_id, force=True)
        message = paused_message(run)
        channel = self.workspaces.get(team_id).notify_channel
        if channel:
            self.clients.for_team(team_id).chat_postMessage(channel=channel, **message.to_dict())
        self.direct_message(team_id, run.requester, message)

    def quota_left(self) -> int | None:
        if self.limiter is None:
            return None
        return max(self.settings.MARKETO_DAILY_QUOTA - int(self.limiter.calls_today()), 0)

    def completed(self, team_id: str, run_id: str) -> None:
        """Summary post, failure CSV, DM to the requester and email; each one independent of the others."""
        run = self.store.get_run(team_id, run_id)
        if run is None:
            return
        quota = self.quota_left()
        summary = summary_message(run, quota_left=quota)
        steps = [
            ("progress", lambda: self.progress(team_id, run_id, force=True)),
            ("summary", lambda: self._post_summary(run, summary)),
            ("dm", lambda: self.direct_message(team_id, run.requester, summary)),
            ("email", lambda: self._email_summary(run, quota)),
        ]
        for name, step in steps:
            try:
                step()
            except Exception:
                log.exception("completion notice %s for run %s failed", name, run_id)

    def _post_summary(self, run: SyncRun, summary: Message) -> None:
        channel = self.workspaces.get(run.team_id).notify_channel
        if not channel:
            return
        self.clients.for_team(run.team_id).chat_postMessage(channel=channel, **summary.to_dict())
        self.upload_failures(run, channel)

    def upload_failures(self, run: SyncRun, channel: str) -> int:
        """Upload the failure report as CSV (only when something was skipped or failed); returns rows."""
        path, rows = failure_csv_file(self.store, run.team_id, run.id)
        try:
            if rows:
                self.clients.for_team(run.team_id).files_upload_v2(
                    channel=channel, file=path, filename=f"sync-{run.id}-failures.csv",
                    title=f"Records not synced ({rows})",
                    initial_comment=f"{rows} records were skipped or failed; each row says why.",
                )
        finally:
            os.unlink(path)
        return rows

    # -- alerts about the ongoing sync -------------------------------------------------------------------
    def alert(self, team_id: str, cause: Cause) -> str | None:
        """Post an alert in the workspace's notify channel; returns its ts (None without a channel)."""
        return self._post_notice(team_id, alert_message(cause))

    def recovered(self, team_id: str, cause: Cause, since: float) -> None:
        self._post_notice(team_id, recovery_message(cause, since, time.time()))

    def _post_notice(self, team_id: str, message: Message) -> str | None:
        channel = self.workspaces.get(team_id).notify_channel
        if not channel:
            log.warning("no notify channel is set: notice not posted: %s", message.text)
            return None
        return self.clients.for_team(team_id).chat_postMessage(channel=channel, **message.to_dict())["ts"]

    def direct_message(self, team_id: str, user_id: str, message: Message) -> None:
        slack = self.clients.for_team(team_id)
        opened = slack.conversations_open(users=user_id)
        slack.chat_postMessage(channel=opened["channel"]["id"], **message.to_dict())

    def _email_summary(self, run: SyncRun, quota: int | None) -> None:
        connection = self.store.get_connection(run.team_id, run.connection_id)
        if connection is None or not connection.notify_email or not self.settings.SMTP_URL:
            return
        subject = f"Dynamics → Marketo sync {run.status.value}"
        self.send_email(connection.notify_email, subject, summary_text(run, quota))

    # -- email ----------------------------------------------------------------------------------------------
    def send_email(self, to: str, subject: str, body: str) -> None:
        """Send a plain-text email over SMTP_URL (`smtp://host:port` or `smtps://user:pass@host:port`).

        `smtp://` says EHLO, upgrades with STARTTLS whenever the server offers it (then EHLO again);
        `smtps://` is TLS from the start. Both verify the server against `CA_BUNDLE` too. A username
        and password are sent only over an encrypted connection, never in clear."""
        if not self.settings.SMTP_URL:
            raise EmailNotConfigured()
        url = urlsplit(self.settings.SMTP_URL)
        message = EmailMessage()
        message["From"] = self.settings.SMTP_FROM
        message["To"] = to
        message["Subject"] = header_text(subject)
        message.set_content(body)
        host, implicit_tls = url.hostname or "localhost", url.scheme == "smtps"
        context = ssl_context(self.settings.CA_BUNDLE)
        if implicit_tls:
            smtp: smtplib.SMTP = smtplib.SMTP_SSL(host, url.port or 465, timeout=SMTP_TIMEOUT, context=context)
        else:
            smtp = smtplib.SMTP(host, url.port or 25, timeout=SMTP_TIMEOUT)
        with smtp:
            smtp.ehlo()
            encrypted = implicit_tls
            if not implicit_tls and smtp.has_extn("starttls"):
                smtp.starttls(context=context)
                smtp.ehlo()
                encrypted = True
            if url.username:
                if not encrypted:
                    raise CredentialsNeedTls(host, url.port or 25)
                smtp.login(unquote(url.username), unquote(url.password or ""))
            smtp.send_message(message)


def header_text(text: str) -> str:
    """One line, fit for an email header: CR/LF (header injection) become a single space."""
    return " ".join(text.splitlines()).strip()
