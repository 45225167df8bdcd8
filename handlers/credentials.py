"""Step 1: the credentials form, the pre-flight checklist, and the way back to the form."""

from __future__ import annotations

from pydantic import SecretStr
from slack_sdk import WebClient

from bot import flow
from bot.dynamics.egress import HostAllowlist, checked_dynamics_url
from bot.dynamics.preflight import run_preflight
from bot.dynamics.validate import validate_client_pair, validate_username
from bot.models import Credentials
from bot.runtime import Runtime
from bot.views import ids
from bot.views.kit import ViewMetadata
from bot.views.step1 import checking_modal, checklist_modal, credentials_modal
from handlers.context import Ctx
from handlers.fields import open_fields

DRAFT_KEYS = ("username", "url", "client_id")  # what may be kept to refill the form: no secrets


INPUTS = {
    "username": (ids.USERNAME_BLOCK, ids.USERNAME_ACTION),
    "password": (ids.PASSWORD_BLOCK, ids.PASSWORD_ACTION),
    "url": (ids.URL_BLOCK, ids.URL_ACTION),
    "client_id": (ids.CLIENT_ID_BLOCK, ids.CLIENT_ID_ACTION),
    "client_secret": (ids.CLIENT_SECRET_BLOCK, ids.CLIENT_SECRET_ACTION),
}


def _typed(ctx: Ctx) -> dict[str, str]:
    view = ctx.submission.view
    return {key: view.value(block, action) or "" for key, (block, action) in INPUTS.items()}


def format_errors(typed: dict[str, str], allowlist: HostAllowlist) -> tuple[dict[str, str], str]:
    """Inline errors by block id, and the normalised URL."""
    errors: dict[str, str] = {}
    username_error = validate_username(typed["username"])
    if username_error:
        errors[ids.USERNAME_BLOCK] = username_error
    url, url_error = checked_dynamics_url(typed["url"], allowlist)
    if url_error:
        errors[ids.URL_BLOCK] = url_error
    for key, text in validate_client_pair(typed["client_id"], typed["client_secret"]).items():
        errors[ids.CREDENTIAL_BLOCKS[key]] = text
    return errors, url


def on_submit(ctx: Ctx) -> None:
    typed = _typed(ctx)
    errors, url = format_errors(typed, HostAllowlist(ctx.runtime.settings.DYNAMICS_HOST_ALLOWLIST))
    if errors:
        ctx.ack(response_action="errors", errors=errors)
        return
    meta = ViewMetadata.parse(ctx.submission.view.private_metadata)
    runtime = ctx.runtime
    runtime.store.save_draft(ctx.team_id, ctx.user_id, {k: typed[k] for k in DRAFT_KEYS} | {"url": url})
    credentials = Credentials(
        username=typed["username"].strip(),
        password=SecretStr(typed["password"]),
        url=url,
        client_id=typed["client_id"].strip() or None,
        client_secret=SecretStr(typed["client_secret"]) if typed["client_secret"] else None,
    )
    ctx.ack(response_action="update", view=checking_modal(url))
    ctx.later(check_credentials, runtime, ctx.client, ctx.team_id, ctx.user_id, meta.connection_id,
              ctx.submission.view.id, credentials)


def check_credentials(
    runtime: Runtime, client: WebClient, team_id: str, user: str, connection_id: str | None, view_id: str,
    credentials: Credentials,
) -> None:
    """After the ack: sign in, run the checklist, show it; on success save the credentials encrypted."""
    if connection_id is None:
        connection_id = flow.start_connection(runtime.store, team_id, user).id
    preflight = run_preflight(credentials, runtime.settings)
    if preflight.ok:
        flow.record_credentials(
            runtime.store, team_id, connection_id, user,
            url=credentials.url, username=credentials.username,
            sync_user_id=preflight.sync_user_id, sync_user_name=preflight.sync_user_name,
            checklist=preflight.checks, credentials=credentials,
        )
    client.views_update(view_id=view_id, view=checklist_modal(preflight.checks, preflight.ok, connection_id))


def on_back_to_form(ctx: Ctx) -> None:
    """From a failed checklist back to the form, refilled with everything but the secrets."""
    ctx.ack()
    draft = ctx.runtime.store.load_draft(ctx.team_id, ctx.user_id)
    connection_id = ctx.action.action.value
    ctx.later(ctx.client.views_update, view_id=ctx.view_id,
              view=credentials_modal(draft, connection_id=connection_id))


def on_checklist_continue(ctx: Ctx) -> None:
    """The checklist passed and the user pressed Continue: on to Step 2."""
    open_fields(ctx, ViewMetadata.parse(ctx.submission.view.private_metadata).connection_id)


VIEWS = {ids.CREDENTIALS_CALLBACK: on_submit, ids.CHECKLIST_CALLBACK: on_checklist_continue}
ACTIONS = {ids.BACK_TO_FORM_ACTION: on_back_to_form}
