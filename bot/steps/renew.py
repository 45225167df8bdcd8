"""New credentials for the connected org (the sync user's password or client secret changed).

The same pre-flight as Step 1 checks them; they replace the saved ones only for the same Dataverse
organization (by OrganizationId) and the same sync user, and the sync goes on without a new
approval: a paused run is resumed, and the next incremental cycle is due at once.
"""

from __future__ import annotations

import time

from pydantic import SecretStr
from rq import Queue
from slack_sdk import WebClient
from slack_sdk.models.views import View

from bot import audit, flow
from bot.audit import AuditLog
from bot.config import Settings
from bot.crypto import SecretUnreadable
from bot.dynamics.egress import HostAllowlist, checked_dynamics_url
from bot.dynamics.preflight import run_preflight
from bot.dynamics.validate import validate_client_pair
from bot.errors import BotError, FlowError
from bot.models import Connection, Credentials, FlowState, RunStatus
from bot.steps.credentials import CredentialsForm, FormChecked
from bot.store import Store
from bot.sync import incremental
from bot.sync.runs import resume_run
from bot.views import ids
from bot.views.renew import Asked, renew_credentials_modal, renewed_modal
from bot.views.step1 import checking_modal

NOT_CONNECTED = ("There is no running or finished sync to enter new credentials for. To connect Dynamics, "
                 "run /connect-dynamics.")
PASSWORD_NEEDED = "Enter the sync user's new password."
SECRET_NEEDED = "Enter the new client secret."


def _connected(store: Store, team_id: str, connection_id: str | None = None) -> Connection:
    """The team's connection with a sync (syncing, paused or synced); FlowError otherwise."""
    connection = store.active_connection(team_id)
    if connection is None or connection.state not in flow.RENEWABLE or (
            connection_id is not None and connection.id != connection_id):
        raise FlowError(NOT_CONNECTED)
    return connection


def _saved(store: Store, connection: Connection) -> Credentials | None:
    """The saved credentials, None when they are gone or sealed with a key no longer configured."""
    try:
        return store.load_credentials(connection.team_id, connection.id)
    except SecretUnreadable:
        return None


def _asked(saved: Credentials | None) -> Asked:
    if saved is None:
        return Asked(unknown=True)
    return Asked(password=bool(saved.password.get_secret_value()), client_secret=bool(saved.client_id))


def renew_form(store: Store, team_id: str) -> View:
    """The form for the team's connected org; FlowError (a plain message) when nothing is connected."""
    connection = _connected(store, team_id)
    return renew_credentials_modal(connection, _asked(_saved(store, connection)))


def open_form(store: Store, slack: WebClient, team_id: str, trigger_id: str) -> None:
    slack.views_open(trigger_id=trigger_id, view=renew_form(store, team_id))


def submit_form(store: Store, allowlist: HostAllowlist, team_id: str, connection_id: str | None,
                form: CredentialsForm) -> FormChecked:
    """Format errors come back inline; otherwise the credentials to check (never stored before they pass)."""
    connection = _connected(store, team_id, connection_id)
    saved = _saved(store, connection)
    asked = _asked(saved)
    errors: dict[str, str] = {}
    url, url_error = checked_dynamics_url(form.url, allowlist)
    if url_error:
        errors[ids.URL_BLOCK] = url_error
    client_id = form.client_id.strip() if asked.unknown else (saved.client_id if saved else None) or ""
    if asked.password and not asked.unknown and not form.password:
        errors[ids.PASSWORD_BLOCK] = PASSWORD_NEEDED
    if asked.client_secret and not form.client_secret:
        errors[ids.CLIENT_SECRET_BLOCK] = SECRET_NEEDED
    if asked.unknown:
        for key, text in validate_client_pair(client_id, form.client_secret).items():
            errors[ids.CREDENTIAL_BLOCKS[key]] = text
        if not form.password and not client_id:
            errors[ids.PASSWORD_BLOCK] = PASSWORD_NEEDED
    if errors:
        return FormChecked(errors=errors)
    credentials = Credentials(
        username=connection.username or "",
        password=SecretStr(form.password),
        url=url,
        client_id=client_id or None,
        client_secret=SecretStr(form.client_secret) if form.client_secret else None,
    )
    return FormChecked(credentials=credentials, view=checking_modal(url))


def check_renewal(store: Store, queue: Queue, settings: Settings, audit_log: AuditLog, team_id: str, user: str,
                  connection_id: str | None, credentials: Credentials) -> View:
    """Run the pre-flight; when it passes for the same org and sync user, save the credentials and let
    the sync go on. Otherwise the form again, saying why (the saved credentials stay as they were)."""
    connection = _connected(store, team_id, connection_id)
    asked = _asked(_saved(store, connection))
    preflight = run_preflight(credentials, settings)
    if not preflight.ok:
        return renew_credentials_modal(connection, asked, checks=preflight.checks)
    try:
        connection = flow.renew_credentials(store, team_id, connection.id, user,
                                            organization_id=preflight.organization_id,
                                            sync_user_id=preflight.sync_user_id, credentials=credentials)
    except FlowError as refused:
        return renew_credentials_modal(connection, asked, message=refused.user_message)
    return renewed_modal(_go_on(store, queue, settings, audit_log, connection, user))


def _go_on(store: Store, queue: Queue, settings: Settings, audit_log: AuditLog, connection: Connection,
           user: str) -> list[str]:
    """Resume what the old credentials stopped; returns what happens next, in words."""
    said: list[str] = []
    run = store.get_run(connection.team_id, connection.run_id) if connection.run_id else None
    if run is not None and run.status in (RunStatus.paused, RunStatus.failed):
        try:
            run = resume_run(store, queue, connection.team_id, run.id)
        except BotError as exc:
            said.append(f"The {run.kind} sync could not be resumed: {exc.user_message}")
        else:
            audit_log.record(connection.team_id, user, audit.SYNC_RESUMED, connection.id, f"run {run.id}")
            said.append(f"The {run.kind} sync was resumed from its last checkpoint.")
    if connection.state == FlowState.synced:
        incremental.schedule(store, connection.team_id, connection.id, settings, at=time.time())
        said.append("The next incremental sync runs now, then every few minutes as before.")
    return said or ["The sync in progress goes on with the new credentials."]
