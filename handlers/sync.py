"""Cancel and resume a sync (buttons on the progress / paused messages, and the subcommands)."""

from __future__ import annotations

from bot import audit, flow
from bot.approvals import Outcome
from bot.models import FlowState, RunStatus
from bot.runtime import Runtime
from bot.sync.jobs import request_cancel, resume_run
from bot.views import ids
from handlers.context import Ctx


def cancel_current(runtime: Runtime, team_id: str, user: str) -> str:
    """Stop what is in progress for this team and say what happened."""
    connection = runtime.store.active_connection(team_id)
    if connection is None:
        return "Nothing to cancel: no connection is in progress."
    if connection.state == FlowState.awaiting_approval:
        decision = runtime.approvals.cancel(team_id, connection.id, user)
        if decision.outcome == Outcome.cancelled and decision.approval is not None:
            runtime.approvals.effects.update_messages(decision.approval)
        return decision.message
    if connection.run_id and connection.state in (FlowState.syncing, FlowState.paused):
        run = request_cancel(runtime.store, team_id, connection.run_id, runtime.notifier)
        runtime.audit.record(team_id, user, audit.SYNC_CANCELLED, connection.id, f"run {run.id}")
        return ("Cancelling: the sync stops at the next batch boundary. Everything written so far stays in "
                "Marketo; /connect-dynamics resume is not possible after a cancel.")
    if flow.can_edit(connection):
        flow.cancel_connection(runtime.store, team_id, connection.id, user)
        return "The draft connection was cancelled. Nothing was written to Marketo."
    return f"Nothing to cancel: the connection is {connection.state.value}."


def resume_current(runtime: Runtime, team_id: str, user: str, run_id: str | None = None) -> str:
    connection = runtime.store.active_connection(team_id)
    run_id = run_id or (connection.run_id if connection else None)
    if not run_id:
        return "Nothing to resume: no sync has run yet."
    run = resume_run(runtime.store, runtime.services.queue(), team_id, run_id)
    runtime.audit.record(team_id, user, audit.SYNC_RESUMED, run.connection_id, f"run {run.id}")
    return "Resumed: the sync continues from its last checkpoint." if run.status != RunStatus.paused else run.message


def on_cancel_button(ctx: Ctx) -> None:
    ctx.runtime.roles.require_admin(ctx.user_id)
    ctx.ack()
    ctx.later(lambda: ctx.tell(cancel_current(ctx.runtime, ctx.team_id, ctx.user_id)))


def on_resume_button(ctx: Ctx) -> None:
    ctx.runtime.roles.require_admin(ctx.user_id)
    ctx.ack()
    ctx.later(lambda: ctx.tell(resume_current(ctx.runtime, ctx.team_id, ctx.user_id, ctx.action.action.value)))


ACTIONS = {ids.CANCEL_SYNC_ACTION: on_cancel_button, ids.RESUME_SYNC_ACTION: on_resume_button}
