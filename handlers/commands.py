"""`/connect-dynamics [status | cancel | resume | audit | help]`."""

from __future__ import annotations

from collections.abc import Callable

from slack_sdk import WebClient

from bot import flow
from bot.models import FlowState
from bot.runtime import Runtime
from bot.views.common import audit_blocks, help_text, info_modal, status_blocks
from bot.views.fields import plan_modal
from bot.views.kit import escape
from bot.views.step1 import credentials_modal
from handlers.context import Ctx
from handlers.fields import LOADING_FIELDS, load_fields
from handlers.sync import cancel_current, resume_current


def on_command(ctx: Ctx) -> None:
    words = ctx.command.text.split()
    name = words[0].lower() if words else ""
    handler = SUBCOMMANDS.get(name)
    if handler is None:
        ctx.ack(text=f"I don't know `{escape(name[:40])}`.\n{help_text()}")
        return
    handler(ctx)


def start(ctx: Ctx) -> None:
    """Open Step 1 (admins only). Only the role check comes before the ack: the draft is read
    and the modal opened after it, while the trigger is fresh, so that under a burst of admins
    no ack waits on Redis. A refusal (a request awaiting approval, a locked org) is told."""
    ctx.runtime.roles.require_admin(ctx.user_id)
    ctx.ack()
    ctx.later(open_step1, ctx.runtime, ctx.client, ctx.team_id, ctx.user_id, ctx.command.trigger_id)


def open_step1(runtime: Runtime, client: WebClient, team_id: str, user: str, trigger_id: str) -> None:
    """Open the flow where the team's draft stands: Step 1, the field picker, or the saved plan."""
    connection = flow.start_connection(runtime.store, team_id, user)
    if connection.state == FlowState.confirm and connection.plan is not None:
        client.views_open(trigger_id=trigger_id, view=plan_modal(connection.id, connection.plan))
    elif connection.state in (FlowState.fields, FlowState.confirm):
        opened = client.views_open(trigger_id=trigger_id, view=info_modal("Select fields", LOADING_FIELDS))
        load_fields(runtime, client, team_id, connection.id, opened["view"]["id"])
    else:
        draft = runtime.store.load_draft(team_id, user)
        client.views_open(trigger_id=trigger_id, view=credentials_modal(draft, connection_id=connection.id))


def show_help(ctx: Ctx) -> None:
    ctx.ack(text=help_text())


def status(ctx: Ctx) -> None:
    runtime = ctx.runtime
    connection = runtime.store.active_connection(ctx.team_id)
    run = runtime.store.get_run(ctx.team_id, connection.run_id) if connection and connection.run_id else None
    blocks = status_blocks(connection, run)
    ctx.ack(text="connect-dynamics status", blocks=[b.to_dict() for b in blocks])


def audit(ctx: Ctx) -> None:
    runtime = ctx.runtime
    runtime.roles.require_admin(ctx.user_id)
    entries = runtime.audit.recent(ctx.team_id, 20)
    ctx.ack(text="Recent audit log", blocks=[b.to_dict() for b in audit_blocks(entries)])


def cancel(ctx: Ctx) -> None:
    """Cancel what is in progress: a running sync, a pending approval, or a draft."""
    ctx.runtime.roles.require_admin(ctx.user_id)
    ctx.ack(text=escape(cancel_current(ctx.runtime, ctx.team_id, ctx.user_id)))


def resume(ctx: Ctx) -> None:
    ctx.runtime.roles.require_admin(ctx.user_id)
    ctx.ack(text=escape(resume_current(ctx.runtime, ctx.team_id, ctx.user_id)))


SUBCOMMANDS: dict[str, Callable[[Ctx], None]] = {
    "": start,
    "connect": start,
    "help": show_help,
    "status": status,
    "audit": audit,
    "cancel": cancel,
    "resume": resume,
}
