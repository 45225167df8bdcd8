"""`/connect-dynamics [status | errors | conflicts | disable | enable | credentials | fields | cancel | resume |
audit | help]`: one handler per subcommand of `bot.commands.SUBCOMMANDS`, which also gives each route its permission."""

from __future__ import annotations

import time
from collections.abc import Callable

from bot.commands import by_name
from bot.slack_payloads import SlashCommand
from bot.steps import conflicts as conflicts_step
from bot.steps import control, ongoing, renew, start
from bot.steps import errors as errors_step
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
    ctx.ack(**status_step.status(ctx.container.store, ctx.team_id, ctx.container.settings).to_dict())


def audit(ctx: Ctx[SlashCommand]) -> None:
    ctx.ack(**status_step.audit_log(ctx.container.audit, ctx.team_id).to_dict())


def disable(ctx: Ctx[SlashCommand]) -> None:
    container = ctx.container
    ctx.ack(**ongoing.disable(container.store, container.audit, ctx.team_id, ctx.user_id, container.queue).to_dict())


def enable(ctx: Ctx[SlashCommand]) -> None:
    container = ctx.container
    ctx.ack(**ongoing.enable(container.store, container.settings, container.audit, ctx.team_id, ctx.user_id,
                             container.queue).to_dict())


def cancel(ctx: Ctx[SlashCommand]) -> None:
    """Cancel what is in progress: a running sync, a pending approval, or a draft."""
    container = ctx.container
    said = control.cancel_current(container.store, container.approvals, container.approvals.effects, container.audit,
                                  container.notifier, ctx.team_id, ctx.user_id, container.queue)
    ctx.ack(text=escape(said))


def resume(ctx: Ctx[SlashCommand]) -> None:
    container = ctx.container
    said = control.resume_current(container.store, container.queue, container.audit, ctx.team_id, ctx.user_id)
    ctx.ack(text=escape(said))


def errors(ctx: Ctx[SlashCommand]) -> None:
    """The newest failures in the answer; the full list as a CSV file after the ack."""
    container, settings = ctx.container, ctx.container.settings
    query = errors_step.parse_query(ctx.payload.text.split()[1:], time.time())
    answer = errors_step.list_errors(container.store, settings.SYNC_RETRY_ATTEMPTS, ctx.team_id, query)
    ctx.ack(**answer.message.to_dict())
    if answer.total and answer.connection_id:
        ctx.later(errors_step.upload_errors, container.store, ctx.client, settings.SYNC_RETRY_ATTEMPTS, ctx.team_id,
                  answer.connection_id, ctx.user_id, query)


def conflicts(ctx: Ctx[SlashCommand]) -> None:
    """The collisions the two-way sync settled (a word that is not a two-way table gets the usage)."""
    ctx.ack(**conflicts_step.list_conflicts(ctx.container.store, ctx.team_id, ctx.payload.text.split()[1:]).to_dict())


def credentials(ctx: Ctx[SlashCommand]) -> None:
    """New credentials for the connected org: the form opens after the ack, or a plain refusal."""
    ctx.ack()
    ctx.later(renew.open_form, ctx.container.store, ctx.client, ctx.team_id, ctx.payload.trigger_id)


HANDLERS: dict[str, Callable[[Ctx[SlashCommand]], None]] = {
    "": connect,
    "status": status,
    "errors": errors,
    "conflicts": conflicts,
    "disable": disable,
    "enable": enable,
    "credentials": credentials,
    "fields": change_fields,
    "cancel": cancel,
    "resume": resume,
    "audit": audit,
    "help": show_help,
}

SUBCOMMANDS: dict[str, Route[SlashCommand]] = {
    name: Route(HANDLERS[sub.name], sub.permission) for name, sub in by_name().items()
}
