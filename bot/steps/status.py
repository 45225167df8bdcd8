"""Where things stand: the status answer, the audit log, the App Home tab."""

from __future__ import annotations

import time
from collections.abc import Sequence

from slack_sdk.models.blocks import Block
from slack_sdk.models.views import View

from bot.audit import AuditLog
from bot.config import Settings
from bot.models import Connection, FlowState, SyncRun
from bot.store import OngoingFigures, Store
from bot.sync.live import changes_line
from bot.views.brake import held_lines
from bot.views.common import audit_blocks, help_text, home_view, status_blocks
from bot.views.conflicts import write_back_line
from bot.views.kit import MAX_MESSAGE_BLOCKS, Message, escape, fit, sections

AUDIT_ENTRIES = 20
CHANGE_WAITING = ":hourglass_flowing_sand: A change of fields is waiting for a team lead's approval."


def _current(store: Store, team_id: str) -> tuple[Connection | None, SyncRun | None]:
    connection = store.active_connection(team_id)
    run = store.get_run(team_id, connection.run_id) if connection and connection.run_id else None
    return connection, run


def _ongoing(store: Store, connection: Connection | None, now: float) -> OngoingFigures | None:
    """The ongoing sync's figures, read from Redis only (no API call), once a sync was started."""
    if connection is None or connection.plan is None or connection.run_id is None:
        return None
    entities = [plan.entity.value for plan in connection.plan.entities]
    return store.ongoing_figures(connection.team_id, connection.id, entities, now)


def status(store: Store, team_id: str, settings: Settings | None = None) -> Message:
    """Where things stand, with the ongoing sync's figures, the entities the mass-change brake holds and
    (given the settings) how changes arrive: webhooks, or polling only."""
    now = time.time()
    connection, run = _current(store, team_id)
    blocks = status_blocks(connection, run, now, ongoing=_ongoing(store, connection, now))
    holds = store.holds.of_connection(team_id, connection.id) if connection else []
    lines = held_lines(holds)
    if settings is not None and connection is not None and connection.state == FlowState.synced:
        lines.append(escape(changes_line(settings)))
    if connection is not None and connection.change_approval_id:
        lines.append(CHANGE_WAITING)
    write_back = store.write_back.last_run(team_id, connection.id) if connection else None
    if write_back is not None:
        lines.append(write_back_line(write_back, now))
    if lines:
        blocks = fit([*blocks, *sections(lines)], MAX_MESSAGE_BLOCKS)
    return Message(text="connect-dynamics status", blocks=blocks)


def audit_log(audit: AuditLog, team_id: str) -> Message:
    return Message(text="Recent audit log", blocks=audit_blocks(audit.recent(team_id, AUDIT_ENTRIES)))


def home(store: Store, team_id: str, more: Sequence[Block] = ()) -> View:
    now = time.time()
    connection, run = _current(store, team_id)
    return home_view(connection, run, now, ongoing=_ongoing(store, connection, now), more=more)


def unknown_subcommand(name: str) -> str:
    return f"I don't know `{escape(name[:40])}`.\n{help_text()}"
