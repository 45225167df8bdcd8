"""Connections at a given step of the flow, written through `bot.flow` into a real store."""

from __future__ import annotations

from bot import flow
from bot.models import CheckResult, Connection, Entity, EntityPlan, FieldPlan, RunStatus, SyncRun
from bot.store import Store

PLAN = FieldPlan(entities=[EntityPlan(entity=Entity.lead, mappings=[], id_field="dynamicsLeadId")])


def at_fields(store: Store, team_id: str, user: str) -> Connection:
    """Credentials checked: Step 2 comes next."""
    connection = flow.start_connection(store, team_id, user)
    return flow.record_credentials(
        store, team_id, connection.id, user, url="https://org.crm.dynamics.com", username="s@org.com",
        sync_user_id="guid", checklist=[CheckResult(name="credentials valid", ok=True)],
    )


def at_confirm(store: Store, team_id: str, user: str) -> Connection:
    """Fields chosen and the plan saved: Step 3 comes next."""
    connection = at_fields(store, team_id, user)
    flow.save_selection(store, team_id, connection.id, user, {"lead": ["firstname"]})
    return flow.save_plan(store, team_id, connection.id, user, PLAN)


def synced(store: Store, connection: Connection, user: str, *, lock: bool = False) -> Connection:
    """A connection at Step 2 taken through the plan, approval and a finished initial sync; with `lock`,
    the approval takes the Dynamics lock as its effects do."""
    team_id = connection.team_id
    flow.save_selection(store, team_id, connection.id, user, {"lead": ["firstname"]})
    connection = flow.save_plan(store, team_id, connection.id, user, PLAN)
    flow.request_approval(store, team_id, connection.id, "approval-1")
    flow.approve(store, team_id, connection.id, "approval-1")
    if lock:
        flow.lock_dynamics_org(store, connection, connection.dynamics_url or "")
    flow.start_sync(store, team_id, connection.id, "run-1")
    run = SyncRun(id="run-1", team_id=team_id, connection_id=connection.id, requester=user,
                  status=RunStatus.finished)
    return flow.follow_run(store, run) or connection
