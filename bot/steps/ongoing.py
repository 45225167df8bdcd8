"""`disable` / `enable`: turn the ongoing (incremental) sync off and on again.

Off, the connection leaves the incremental schedule and a cycle running at that moment stops after
the page it is writing; its delta links and `modifiedon` watermarks stay where the last applied
change left them. On, it is due at once, so the next maintenance tick catches up from there.
"""

from __future__ import annotations

from rq import Queue

from bot import audit
from bot.audit import AuditLog
from bot.config import Settings
from bot.flow import STATE_TEXT
from bot.models import Connection, FlowState, now
from bot.store import OngoingSwitch, Store
from bot.sync import incremental, live, webhook_removal
from bot.views.kit import Message
from bot.views.status import refusal_message, switch_message, unchanged_message

NOT_CONNECTED = "Dynamics is not connected yet: there is no ongoing sync to {verb}."
NOT_SYNCED = "The ongoing sync starts once the initial sync has finished, so there is nothing to {verb} now. {state}"


def _synced(store: Store, team_id: str, verb: str) -> Connection | Message:
    connection = store.active_connection(team_id)
    if connection is None:
        return refusal_message(NOT_CONNECTED.format(verb=verb))
    if connection.state != FlowState.synced:
        return refusal_message(NOT_SYNCED.format(verb=verb, state=STATE_TEXT[connection.state]))
    return connection


def disable(store: Store, audit_log: AuditLog, team_id: str, user: str, queue: Queue | None = None) -> Message:
    """Off; with the queue, the connection's Dataverse webhook is removed in a job too."""
    connection = _synced(store, team_id, "disable")
    if isinstance(connection, Message):
        return connection
    switch = OngoingSwitch(enabled=False, by=user, at=now())
    if not store.ongoing.set_switch(team_id, connection.id, switch):
        return unchanged_message(store.ongoing.switch(team_id, connection.id))
    incremental.unschedule(store, team_id, connection.id)
    if queue is not None:
        webhook_removal.enqueue_removal(store, queue, team_id, connection.id)
    audit_log.record(team_id, user, audit.ONGOING_SYNC_DISABLED, connection.id)
    return switch_message(switch)


def enable(store: Store, settings: Settings, audit_log: AuditLog, team_id: str, user: str,
           queue: Queue | None = None) -> Message:
    """On; with the queue, the connection's Dataverse webhook is registered again in a job (with PUBLIC_URL)."""
    connection = _synced(store, team_id, "enable")
    if isinstance(connection, Message):
        return connection
    switch = OngoingSwitch(enabled=True, by=user, at=now())
    if not store.ongoing.set_switch(team_id, connection.id, switch):
        return unchanged_message(store.ongoing.switch(team_id, connection.id))
    incremental.schedule(store, team_id, connection.id, settings, at=switch.at)
    if queue is not None:
        live.enqueue_registration(queue, settings, team_id, connection.id)
    audit_log.record(team_id, user, audit.ONGOING_SYNC_ENABLED, connection.id)
    return switch_message(switch)
