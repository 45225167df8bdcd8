"""Step 1: the credentials form, the pre-flight checklist, and the way back to the form."""

from __future__ import annotations

from dataclasses import dataclass, field

from pydantic import SecretStr
from slack_sdk.models.views import View

from bot import flow
from bot.config import Settings
from bot.dynamics.egress import HostAllowlist, checked_dynamics_url
from bot.dynamics.preflight import run_preflight
from bot.dynamics.validate import validate_client_pair, validate_username
from bot.models import Credentials
from bot.store import Store
from bot.views import ids
from bot.views.step1 import checking_modal, checklist_modal, credentials_modal


@dataclass(frozen=True)
class CredentialsForm:
    """What was typed in Step 1 (empty strings for empty inputs)."""

    username: str = ""
    password: str = ""
    url: str = ""
    client_id: str = ""
    client_secret: str = ""


@dataclass(frozen=True)
class FormChecked:
    """Inline errors by block id, or the credentials to check and the modal to show meanwhile."""

    errors: dict[str, str] = field(default_factory=dict)
    credentials: Credentials | None = None
    view: View | None = None


def format_errors(form: CredentialsForm, allowlist: HostAllowlist) -> tuple[dict[str, str], str]:
    """Inline errors by block id, and the normalised URL (refused when it leads into a private network)."""
    errors: dict[str, str] = {}
    username_error = validate_username(form.username)
    if username_error:
        errors[ids.USERNAME_BLOCK] = username_error
    url, url_error = checked_dynamics_url(form.url, allowlist)
    if url_error:
        errors[ids.URL_BLOCK] = url_error
    for key, text in validate_client_pair(form.client_id, form.client_secret).items():
        errors[ids.CREDENTIAL_BLOCKS[key]] = text
    return errors, url


def submit_form(store: Store, allowlist: HostAllowlist, team_id: str, user: str, form: CredentialsForm) -> FormChecked:
    """Format errors come back inline; otherwise keep a draft (no secrets) to refill the form later."""
    errors, url = format_errors(form, allowlist)
    if errors:
        return FormChecked(errors=errors)
    store.save_draft(team_id, user, {"username": form.username, "url": url, "client_id": form.client_id})
    credentials = Credentials(
        username=form.username.strip(),
        password=SecretStr(form.password),
        url=url,
        client_id=form.client_id.strip() or None,
        client_secret=SecretStr(form.client_secret) if form.client_secret else None,
    )
    return FormChecked(credentials=credentials, view=checking_modal(url))


def check_credentials(store: Store, settings: Settings, team_id: str, user: str, connection_id: str | None,
                      credentials: Credentials) -> View:
    """Sign in and run the checklist; on success save the credentials (encrypted). Returns the checklist."""
    if connection_id is None:
        connection_id = flow.start_connection(store, team_id, user).id
    preflight = run_preflight(credentials, settings)
    if preflight.ok:
        flow.record_credentials(
            store, team_id, connection_id, user,
            url=credentials.url, username=credentials.username,
            sync_user_id=preflight.sync_user_id, sync_user_name=preflight.sync_user_name,
            organization_id=preflight.organization_id,
            checklist=preflight.checks, credentials=credentials,
        )
    return checklist_modal(preflight.checks, preflight.ok, connection_id)


def back_to_form(store: Store, team_id: str, user: str, connection_id: str | None) -> View:
    """From a failed checklist back to the form, refilled with everything but the secrets."""
    return credentials_modal(store.load_draft(team_id, user), connection_id=connection_id)
