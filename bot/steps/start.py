"""Open the flow where the team's draft stands: Step 1, the field picker, or the saved plan."""

from __future__ import annotations

from dataclasses import dataclass

from slack_sdk import WebClient
from slack_sdk.models.views import View

from bot import flow
from bot.dynamics.metadata import MetadataCache
from bot.models import FlowState
from bot.steps import fields
from bot.steps.ports import DataverseFactory
from bot.store import Store
from bot.views.fields import plan_modal
from bot.views.step1 import credentials_modal


@dataclass(frozen=True)
class Opening:
    """The first modal to open; `fields_pending` when it is a placeholder for the field picker."""

    connection_id: str
    view: View
    fields_pending: bool = False


def opening(store: Store, team_id: str, user: str) -> Opening:
    """Start (or resume) the team's connection and choose where to open it.

    Raises FlowError when a new flow cannot start (a request awaiting approval, a sync in place).
    """
    connection = flow.start_connection(store, team_id, user)
    if connection.state == FlowState.confirm and connection.plan is not None:
        return Opening(connection.id, plan_modal(connection.id, connection.plan))
    if connection.state in (FlowState.fields, FlowState.confirm):
        return Opening(connection.id, fields.reading_fields(), fields_pending=True)
    return Opening(connection.id, credentials_modal(store.load_draft(team_id, user), connection_id=connection.id))


def open_flow(store: Store, metadata: MetadataCache, dataverse: DataverseFactory, slack: WebClient, team_id: str,
              user: str, trigger_id: str) -> None:
    """Open the modal with the (short-lived) trigger, then fill the field picker if that is where it opens."""
    first = opening(store, team_id, user)
    opened = slack.views_open(trigger_id=trigger_id, view=first.view)
    if first.fields_pending:
        picker = fields.load_fields(store, metadata, dataverse, team_id, first.connection_id)
        slack.views_update(view_id=opened["view"]["id"], view=picker)
