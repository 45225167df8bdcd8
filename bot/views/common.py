"""Views used everywhere: error and info modals, help, status, the audit log and the App Home tab."""

from __future__ import annotations

import time
from collections.abc import Sequence

from slack_sdk.models.blocks import ActionsBlock, Block, DividerBlock, HeaderBlock
from slack_sdk.models.views import View

from bot.commands import COMMAND, SUBCOMMANDS, WHO
from bot.flow import STATE_TEXT
from bot.models import AuditEntry, Connection, FlowState, RunStatus, SyncRun
from bot.store import OngoingFigures
from bot.views import ids
from bot.views.fields import WATERMARK_FALLBACK, plan_summary_lines
from bot.views.kit import (
    ENTITY_PLURAL,
    MAX_MESSAGE_BLOCKS,
    MAX_VIEW_BLOCKS,
    button,
    context,
    escape,
    fit,
    limited_lines,
    mention,
    modal,
    section,
    sections,
    when,
)
from bot.views.progress import elapsed_seconds, entity_line, entity_summary
from bot.views.status import ongoing_blocks

NEXT_STEP: dict[FlowState, str] = {
    FlowState.credentials: f"Run `{COMMAND}` to continue.",
    FlowState.fields: f"Run `{COMMAND}` to continue.",
    FlowState.confirm: f"Run `{COMMAND}` to review the plan and ask for approval.",
    FlowState.awaiting_approval: f"`{COMMAND} cancel` withdraws the request.",
    FlowState.syncing: f"`{COMMAND} cancel` stops it at the next batch.",
}

def error_modal(message: str) -> View:
    """A plain-language error (a BotError's `user_message`); no secrets ever reach it."""
    return modal("Something went wrong", ids.ERROR_CALLBACK, [section(f":x: {escape(message)}")], close="Close")


def info_modal(title: str, text: str) -> View:
    """Any short notice; `text` is mrkdwn written by the bot (escape user input before passing it)."""
    return modal(title, ids.INFO_CALLBACK, [section(text)], close="Close")


def help_text() -> str:
    """One line per subcommand of `bot.commands`, with who may use it."""
    lines = [f"• `{sub.usage}` — {sub.summary} ({WHO[sub.permission.role]})." for sub in SUBCOMMANDS]
    return "\n".join([
        f"*{COMMAND}* connects Microsoft Dynamics 365 to Marketo and runs the sync.",
        *lines,
        "A team lead approves each sync before anything changes in Marketo; custom Marketo fields "
        "cannot be deleted once created.",
    ])


def _run_blocks(run: SyncRun, now: float | None) -> list[Block]:
    elapsed = elapsed_seconds(run, now)
    if run.status in (RunStatus.queued, RunStatus.running):
        lines = [entity_line(p, elapsed) for p in run.entities]
    else:
        lines = [entity_summary(p) for p in run.entities]
    blocks = sections(lines, f"*Sync ({run.kind}, {run.status.value})* started {when(run.started_at)}")
    if run.message:
        blocks.append(context(escape(run.message)))
    return blocks


def _shows_ongoing(connection: Connection, ongoing: OngoingFigures) -> bool:
    return (connection.state == FlowState.synced or not ongoing.enabled
            or any(row.last_cycle_at is not None for row in ongoing.entities))


def status_blocks(connection: Connection | None, run: SyncRun | None, now: float | None = None,
                  ongoing: OngoingFigures | None = None) -> list[Block]:
    """Where things stand, for `/connect-dynamics status` and the Home tab (≤ 50 blocks): the connection,
    the ongoing sync once there is one (`ongoing`), the plan and the last initial sync (or resync) run."""
    if connection is None:
        return [section(f"Dynamics is not connected yet. A Marketo admin can run `{COMMAND}` to start.")]
    facts = [f"*Dynamics org:* {escape(connection.dynamics_url or 'not entered yet')}",
             f"*Started by:* {mention(connection.requester)} · last change {when(connection.updated_at)}"]
    if connection.username:
        facts.insert(1, f"*Sync user:* {escape(connection.sync_user_name or connection.username)}")
    blocks: list[Block] = [section(f"*{STATE_TEXT[connection.state]}*\n" + "\n".join(facts))]
    if ongoing is not None and _shows_ongoing(connection, ongoing):
        blocks += ongoing_blocks(ongoing, now if now is not None else time.time())
    if connection.plan is not None:
        blocks += sections(plan_summary_lines(connection.plan), "*Plan*")
        untracked = [ENTITY_PLURAL[ep.entity] for ep in connection.plan.entities if not ep.change_tracking]
        if untracked:
            blocks.append(context(f":warning: {', '.join(untracked)}: {WATERMARK_FALLBACK}."))
    if run is not None:
        blocks += _run_blocks(run, now)
    if connection.state in NEXT_STEP:
        blocks.append(context(NEXT_STEP[connection.state]))
    return fit(blocks, MAX_MESSAGE_BLOCKS)


def _audit_line(entry: AuditEntry) -> str:
    line = f"{when(entry.at)} · {mention(entry.actor)} · *{escape(entry.action.replace('_', ' '))}*"
    return f"{line} — {escape(entry.detail)}" if entry.detail else line


def audit_blocks(entries: list[AuditEntry], limit: int = 40) -> list[Block]:
    """The recent audit log, newest as given first, one line per entry."""
    if not entries:
        return [section("*Recent activity*\nNothing yet.")]
    lines = limited_lines((_audit_line(e) for e in entries), limit, "entries")
    return fit(sections(lines, "*Recent activity*"), MAX_MESSAGE_BLOCKS)


def home_view(connection: Connection | None, run: SyncRun | None, now: float | None = None,
              ongoing: OngoingFigures | None = None, more: Sequence[Block] = ()) -> View:
    """The App Home tab: status, what to do next, and buttons to start or get help; then `more`
    (the workspace settings section)."""
    can_start = connection is None or connection.state in (
        FlowState.credentials, FlowState.fields, FlowState.confirm, FlowState.cancelled, FlowState.failed)
    buttons = [button("Help", ids.HOME_HELP_ACTION)]
    if can_start:
        label = "Connect Dynamics" if connection is None or connection.state in (
            FlowState.cancelled, FlowState.failed) else "Continue connecting"
        buttons.insert(0, button(label, ids.HOME_CONNECT_ACTION, connection.id if connection else None,
                                 style="primary"))
    blocks: list[Block] = [
        HeaderBlock(text="Dynamics → Marketo"),
        *status_blocks(connection, run, now, ongoing),
        ActionsBlock(block_id=ids.HOME_ACTIONS_BLOCK, elements=buttons),
        DividerBlock(),
        section(help_text()),
        *more,
    ]
    return View(type="home", blocks=fit(blocks, MAX_VIEW_BLOCKS))
