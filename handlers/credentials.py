"""Step 1: the credentials form, the pre-flight checklist, and the way back to the form; and new
credentials for the connected org (the alert's button and the form it opens)."""

from __future__ import annotations

from bot.dynamics.egress import HostAllowlist
from bot.roles import CONNECT, RENEW
from bot.slack_payloads import ActionPayload, SlackView, ViewPayload
from bot.steps import credentials, fields, renew
from bot.steps.credentials import CredentialsForm
from bot.views import ids
from bot.views.kit import ViewMetadata
from handlers.context import Ctx, Route

INPUTS = {
    "username": (ids.USERNAME_BLOCK, ids.USERNAME_ACTION),
    "password": (ids.PASSWORD_BLOCK, ids.PASSWORD_ACTION),
    "url": (ids.URL_BLOCK, ids.URL_ACTION),
    "client_id": (ids.CLIENT_ID_BLOCK, ids.CLIENT_ID_ACTION),
    "client_secret": (ids.CLIENT_SECRET_BLOCK, ids.CLIENT_SECRET_ACTION),
}


def _form(view: SlackView) -> CredentialsForm:
    return CredentialsForm(**{key: view.value(block, action) or "" for key, (block, action) in INPUTS.items()})


def on_submit(ctx: Ctx[ViewPayload]) -> None:
    view = ctx.payload.view
    container = ctx.container
    allowlist = HostAllowlist(container.settings.DYNAMICS_HOST_ALLOWLIST)
    checked = credentials.submit_form(container.store, allowlist, ctx.team_id, ctx.user_id, _form(view))
    if checked.errors:
        ctx.ack(response_action="errors", errors=checked.errors)
        return
    ctx.ack(response_action="update", view=checked.view)
    ctx.fill_modal(credentials.check_credentials, container.store, container.settings, ctx.team_id, ctx.user_id,
                   ViewMetadata.parse(view.private_metadata).connection_id, checked.credentials)


def on_back_to_form(ctx: Ctx[ActionPayload]) -> None:
    ctx.ack()
    ctx.fill_modal(credentials.back_to_form, ctx.container.store, ctx.team_id, ctx.user_id, ctx.payload.action.value)


def on_checklist_continue(ctx: Ctx[ViewPayload]) -> None:
    """The checklist passed and the user pressed Continue: on to Step 2."""
    container = ctx.container
    ctx.ack(response_action="update", view=fields.reading_fields())
    ctx.fill_modal(fields.load_fields, container.store, container.metadata, container.dataverse, ctx.team_id,
                   ViewMetadata.parse(ctx.payload.view.private_metadata).connection_id)


def on_renew_button(ctx: Ctx[ActionPayload]) -> None:
    """The "credentials rejected" alert's button: the same form as `/connect-dynamics credentials`."""
    ctx.ack()
    ctx.later(renew.open_form, ctx.container.store, ctx.client, ctx.team_id, ctx.payload.trigger_id)


def on_renew_submit(ctx: Ctx[ViewPayload]) -> None:
    """Format errors inline; else a "checking" view at once and the pre-flight after the ack."""
    view = ctx.payload.view
    container = ctx.container
    connection_id = ViewMetadata.parse(view.private_metadata).connection_id
    checked = renew.submit_form(container.store, HostAllowlist(container.settings.DYNAMICS_HOST_ALLOWLIST),
                                ctx.team_id, connection_id, _form(view))
    if checked.errors:
        ctx.ack(response_action="errors", errors=checked.errors)
        return
    ctx.ack(response_action="update", view=checked.view)
    ctx.fill_modal(renew.check_renewal, container.store, container.queue, container.settings, container.audit,
                   ctx.team_id, ctx.user_id, connection_id, checked.credentials)


VIEWS = {ids.CREDENTIALS_CALLBACK: Route(on_submit, CONNECT),
         ids.CHECKLIST_CALLBACK: Route(on_checklist_continue, CONNECT),
         ids.RENEW_CALLBACK: Route(on_renew_submit, RENEW)}
ACTIONS = {ids.BACK_TO_FORM_ACTION: Route(on_back_to_form, CONNECT),
           ids.RENEW_CREDENTIALS_ACTION: Route(on_renew_button, RENEW)}
