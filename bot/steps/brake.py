"""A team lead decides on a cycle the mass-change brake holds: approve (write it) or discard (skip it).

Any lead may decide (there is no requester); the decision is taken once, in one transaction on the
hold record, so a double click or two leads at once decide once. The next cycle is made due at once.
"""

from __future__ import annotations

import logging

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot import audit
from bot.audit import AuditLog
from bot.models import BrakeStatus, Entity, MassChangeHold, now
from bot.store import Store
from bot.views.brake import brake_decided_message

log = logging.getLogger(__name__)

GONE = "This hold no longer exists (the button may be from an old message)."


def _parse(value: str) -> tuple[str, Entity] | None:
    connection_id, _, entity = value.partition(":")
    return (connection_id, Entity(entity)) if connection_id and entity in Entity.__members__ else None


def decide_hold(store: Store, audit_log: AuditLog, slack: WebClient, team_id: str, user: str, value: str,
                approve: bool) -> str:
    """Record the lead's decision (once); returns what to tell them."""
    parsed = _parse(value)
    if parsed is None:
        return GONE
    connection_id, entity = parsed
    status = BrakeStatus.approved if approve else BrakeStatus.discarded

    def decide(current: MassChangeHold) -> MassChangeHold | None:
        if current.status != BrakeStatus.held:
            return None
        return current.model_copy(update={"status": status, "decided_by": user, "decided_at": now()})

    hold, decided = store.holds.update(team_id, connection_id, entity.value, decide)
    if hold is None:
        return GONE
    if not decided:
        return f"This mass change was already {hold.status.value} by a team lead."
    action = audit.MASS_CHANGE_APPROVED if approve else audit.MASS_CHANGE_DISCARDED
    audit_log.record(team_id, user, action, connection_id,
                     f"{entity.value}: {hold.deletes} deletes, {hold.overwrites} overwrites")
    store.incremental.schedule(team_id, connection_id, now())
    message = brake_decided_message(hold)
    for channel, ts in hold.messages:
        try:
            slack.chat_update(channel=channel, ts=ts, **message.to_dict())
        except SlackApiError as exc:
            log.warning("could not update the mass-change request in %s: %s", channel, exc.response.get("error"))
    if approve:
        return "Approved: the next cycle writes the held changes."
    return "Discarded: the next cycle skips the held changes; they are listed in the errors."
