"""`/connect-dynamics [status | cancel | resume | audit | help]`."""

from __future__ import annotations

from collections.abc import Callable

from bot import flow
from bot.views.common import audit_blocks, help_text, status_blocks
from bot.views.step1 import credentials_modal
from handlers.context import Ctx


def on_command(ctx: Ctx) -> None:
    words = ctx.command.text.split()
    name = words[0].lower() if words else ""
    handler = SUBCOMMANDS.get(name)
    if handler is None:
        ctx.ack(text=f"I don't know `{name[:40]}`.\n{help_text()}")
        return
    handler(ctx)


def start(ctx: Ctx) -> None:
    """Open Step 1 (admins only). The modal opens after the ack, while the trigger is fresh."""
    runtime = ctx.runtime
    runtime.roles.require_admin(ctx.user_id)
    connection = flow.start_connection(runtime.store, ctx.team_id, ctx.user_id)
    draft = runtime.store.load_draft(ctx.team_id, ctx.user_id)
    view = credentials_modal(draft, connection_id=connection.id)
    ctx.ack()
    ctx.later(ctx.client.views_open, trigger_id=ctx.command.trigger_id, view=view)


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
    from handlers.sync import cancel_current

    ctx.runtime.roles.require_admin(ctx.user_id)
    ctx.ack(text=cancel_current(ctx.runtime, ctx.team_id, ctx.user_id))


def resume(ctx: Ctx) -> None:
    from handlers.sync import resume_current

    ctx.runtime.roles.require_admin(ctx.user_id)
    ctx.ack(text=resume_current(ctx.runtime, ctx.team_id, ctx.user_id))


SUBCOMMANDS: dict[str, Callable[[Ctx], None]] = {
    "": start,
    "connect": start,
    "help": show_help,
    "status": status,
    "audit": audit,
    "cancel": cancel,
    "resume": resume,
}
