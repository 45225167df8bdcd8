"""Where things stand: the status answer, the audit log, the App Home tab."""

from __future__ import annotations

from slack_sdk.models.views import View

from bot.audit import AuditLog
from bot.models import Connection, SyncRun
from bot.store import Store
from bot.views.brake import held_lines
from bot.views.common import audit_blocks, help_text, home_view, status_blocks
from bot.views.kit import MAX_MESSAGE_BLOCKS, Message, escape, fit, sections

AUDIT_ENTRIES = 20
CHANGE_WAITING = ":hourglass_flowing_sand: A change of fields is waiting for a team lead's approval."


def _current(store: Store, team_id: str) -> tuple[Connection | None, SyncRun | None]:
    connection = store.active_connection(team_id)
    run = store.get_run(team_id, connection.run_id) if connection and connection.run_id else None
    return connection, run


def status(store: Store, team_id: str) -> Message:
    """Where things stand, with the entities the mass-change brake holds."""
    connection, run = _current(store, team_id)
    blocks = status_blocks(connection, run)
    holds = store.holds.of_connection(team_id, connection.id) if connection else []
    lines = held_lines(holds)
    if connection is not None and connection.change_approval_id:
        lines.append(CHANGE_WAITING)
    if lines:
        blocks = fit([*blocks, *sections(lines)], MAX_MESSAGE_BLOCKS)
    return Message(text="connect-dynamics status", blocks=blocks)


def audit_log(audit: AuditLog, team_id: str) -> Message:
    return Message(text="Recent audit log", blocks=audit_blocks(audit.recent(team_id, AUDIT_ENTRIES)))


def home(store: Store, team_id: str) -> View:
    return home_view(*_current(store, team_id))


def unknown_subcommand(name: str) -> str:
    return f"I don't know `{escape(name[:40])}`.\n{help_text()}"
