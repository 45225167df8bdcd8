"""`/connect-dynamics [status | cancel | resume | audit | fields | help]`: one route per subcommand."""

from __future__ import annotations

from bot.roles import CONNECT, CONTROL, READ_AUDIT
from bot.slack_payloads import SlashCommand
from bot.steps import control, start
from bot.steps import fields as fields_step
from bot.steps import status as status_step
from bot.views.common import help_text
from bot.views.kit import escape
from handlers.context import Ctx, Route


def subcommand(text: str) -> str:
    words = text.split()
    return words[0].lower() if words else ""


def connect(ctx: Ctx[SlashCommand]) -> None:
    """Open the flow. Only the role check comes before the ack: the draft is read and the modal
    opened after it, while the trigger is fresh, so that under a burst of admins no ack waits on
    Redis. A refusal (a request awaiting approval, a locked org) is told."""
    ctx.ack()
    container = ctx.container
    ctx.later(start.open_flow, container.store, container.metadata, container.dataverse, ctx.client,
              ctx.team_id, ctx.user_id, ctx.payload.trigger_id)


def change_fields(ctx: Ctx[SlashCommand]) -> None:
    """Reopen Step 2 on a synced connection: a change of fields goes through a plan and approval."""
    ctx.ack()
    container = ctx.container
    ctx.later(fields_step.open_change, container.store, container.metadata, container.dataverse, ctx.client,
              ctx.team_id, ctx.payload.trigger_id)


def show_help(ctx: Ctx[SlashCommand]) -> None:
    ctx.ack(text=help_text())


def status(ctx: Ctx[SlashCommand]) -> None:
    ctx.ack(**status_step.status(ctx.container.store, ctx.team_id).to_dict())


def audit(ctx: Ctx[SlashCommand]) -> None:
    ctx.ack(**status_step.audit_log(ctx.container.audit, ctx.team_id).to_dict())


def cancel(ctx: Ctx[SlashCommand]) -> None:
    """Cancel what is in progress: a running sync, a pending approval, or a draft."""
    container = ctx.container
    said = control.cancel_current(container.store, container.approvals, container.approvals.effects, container.audit,
                                  container.notifier, ctx.team_id, ctx.user_id)
    ctx.ack(text=escape(said))


def resume(ctx: Ctx[SlashCommand]) -> None:
    container = ctx.container
    said = control.resume_current(container.store, container.queue, container.audit, ctx.team_id, ctx.user_id)
    ctx.ack(text=escape(said))


SUBCOMMANDS: dict[str, Route[SlashCommand]] = {
    "": Route(connect, CONNECT),
    "connect": Route(connect, CONNECT),
    "help": Route(show_help),
    "status": Route(status),
    "audit": Route(audit, READ_AUDIT),
    "cancel": Route(cancel, CONTROL),
    "resume": Route(resume, CONTROL),
    "fields": Route(change_fields, CONNECT),
}
