"""The backfill after a change of fields: the columns added after go-live written into the records
Marketo already holds, without a full re-sync.

A backfill is a sync run of kind "backfill" (one job per entity with added columns, the initial sync's
reader, checkpoints, sweeper and notices) with two differences: it writes only the id field and the
added columns, with `action=updateOnly` (a person missing in Marketo is not created: Marketo skips it,
and the failure report lists it with the reason), and it takes a lease of its own per entity
(`lease_part`), so the incremental cycles go on while it runs for hours. The connection does not follow
the run (its state stays "synced").

It reads the entity with the new plan's whole `$select` and change tracking, so that when it is done its
delta link (which covers the added columns) is offered to the incremental cycles: the first cycle that
starts after that applies what its own link still holds, then switches to the offered one (which replays
what changed since the backfill read, harmlessly). Until then the cycles read with their old link and
write the columns it covers (`covered_plan`).
"""

from __future__ import annotations

from rq import Queue

from bot.dynamics.client import delta_link_columns
from bot.errors import FlowError
from bot.models import Connection, EntityPlan, EntityProgress, RunStatus, SyncRun
from bot.notify import Notifier
from bot.store import Store
from bot.sync.checkpoint import BACKFILL, TERMINAL_RUN
from bot.sync.runs import launch_run

UPDATE_ONLY = "updateOnly"


def start_backfill(store: Store, queue: Queue, connection: Connection, fields: dict[str, list[str]],
                   requester: str, run_id: str, notifier: Notifier | None = None) -> SyncRun:
    """Create the backfill run for the entities with added columns and enqueue one job per entity."""
    if connection.plan is None:
        raise FlowError("The connection has no field plan.")
    plans = [p for p in connection.plan.entities if fields.get(p.entity.value)]
    run = SyncRun(id=run_id, team_id=connection.team_id, connection_id=connection.id, requester=requester,
                  kind=BACKFILL, status=RunStatus.running, backfill_fields=fields,
                  entities=[EntityProgress(entity=p.entity, estimated=p.record_count or 0) for p in plans])
    return launch_run(store, queue, run, notifier)


def written_plan(plan: EntityPlan, added: list[str]) -> EntityPlan:
    """What a backfill writes: the id field and the added columns only."""
    return plan.model_copy(update={"mappings": [m for m in plan.mappings if m.source in added]})


def covered_plan(store: Store, connection: Connection, plan: EntityPlan, link: str, *, offered: bool) -> EntityPlan:
    """While the connection's backfill runs (or has `offered` its link), the incremental cycles write what
    their delta link covers (a link made before the change lacks the added columns); otherwise the plan. An
    opportunity's primary contact is read only where the link has it (a link made before it was read would
    otherwise need a full read); where not, the writer reads it again."""
    columns = delta_link_columns(link)
    if plan.primary_contact_lookup and plan.primary_contact_lookup not in columns:
        plan = plan.model_copy(update={"primary_contact_lookup": None})
    if not offered and connection.backfill_run_id is None:
        return plan
    run = store.get_run(connection.team_id, connection.backfill_run_id) if connection.backfill_run_id else None
    if not offered and run is not None and run.status in TERMINAL_RUN:
        return plan  # (a run not saved yet is about to start)
    if all(name in columns for name in plan.select):
        return plan
    lookups = {name: None for name in ("company_lookup", "owner_lookup") if getattr(plan, name) not in columns}
    return plan.model_copy(update={"mappings": [m for m in plan.mappings if m.read_name in columns],
                                   "identity_columns": [c for c in plan.identity_columns if c in columns],
                                   **lookups})
