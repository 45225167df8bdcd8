"""Step 2: the field picker (options served from cached metadata), refresh, and the plan."""

from __future__ import annotations

from slack_sdk import WebClient

from bot import flow
from bot.models import Entity, EntityMetadata
from bot.runtime import Runtime
from bot.sync.mapping import build_plan, default_selection, detect_sync_filter, selectable
from bot.sync.planning import count_records
from bot.views import ids
from bot.views.common import info_modal
from bot.views.fields import EntityFieldsView, fields_modal, options_for, plan_modal
from bot.views.kit import ViewMetadata
from handlers.approvals import open_step3
from handlers.context import Ctx

LOADING_FIELDS = ":hourglass_flowing_sand: Reading the fields of your Dynamics org…"


def _connection_id(ctx: Ctx) -> str | None:
    view = ctx.view
    return ViewMetadata.parse(view.private_metadata if view else None).connection_id


def open_fields(ctx: Ctx, connection_id: str | None) -> None:
    """Ack with a "reading fields" modal, then fill it from Dynamics metadata."""
    ctx.ack(response_action="update", view=info_modal("Select fields", LOADING_FIELDS))
    ctx.later(load_fields, ctx.runtime, ctx.client, ctx.team_id, connection_id, ctx.submission.view.id)


def _metadata(runtime: Runtime, team_id: str, connection_id: str, refresh: bool) -> dict[Entity, EntityMetadata]:
    with runtime.services.dataverse(team_id, connection_id) as client:
        return {
            entity: runtime.metadata.get(team_id, connection_id, client, entity, refresh=refresh)
            for entity in Entity
        }


def load_fields(runtime: Runtime, client: WebClient, team_id: str, connection_id: str, view_id: str,
                refresh: bool = False) -> None:
    connection = runtime.store.get_connection(team_id, connection_id)
    if connection is None:
        raise flow.FlowError("This connection no longer exists. Run /connect-dynamics again.")
    per_entity = []
    for entity, metadata in _metadata(runtime, team_id, connection_id, refresh).items():
        names = connection.selected.get(entity.value) or default_selection(metadata)
        chosen = [a for a in (metadata.attribute(n) for n in names) if a is not None]
        per_entity.append(EntityFieldsView(
            entity=entity, selected=chosen, filter_status=detect_sync_filter(metadata),
            attribute_count=len(selectable(metadata)),
        ))
    client.views_update(view_id=view_id, view=fields_modal(connection_id, per_entity))


def on_options(ctx: Ctx) -> None:
    """Answer a field search from the Redis cache only, so it is fast for 400+ attributes."""
    entity = ids.entity_of_fields_action(ctx.suggestion.action_id)
    connection_id = _connection_id(ctx)
    metadata = ctx.runtime.metadata.cached(ctx.team_id, connection_id, entity) if entity and connection_id else None
    if metadata is None:
        ctx.ack(options=[])
        return
    connection = ctx.runtime.store.get_connection(ctx.team_id, connection_id)
    selected = connection.selected.get(entity.value, []) if connection else []
    ctx.ack(options=options_for(metadata.attributes, ctx.suggestion.value, selected, entity=entity))


def _selection(ctx: Ctx) -> dict[str, list[str]]:
    view = ctx.view
    chosen = {}
    for entity in Entity:
        values = view.value(ids.fields_block_id(entity), ids.fields_action_id(entity)) if view else None
        if values is not None:
            chosen[entity.value] = list(values)
    return chosen


def on_refresh(ctx: Ctx) -> None:
    """Re-read metadata from Dynamics (fields added since the first look), keeping what is selected."""
    connection_id = ctx.action.action.value or _connection_id(ctx)
    selection = _selection(ctx)
    ctx.ack()
    if any(selection.values()):
        flow.save_selection(ctx.runtime.store, ctx.team_id, connection_id, ctx.user_id, selection)
    ctx.later(load_fields, ctx.runtime, ctx.client, ctx.team_id, connection_id, ctx.view_id, True)


def on_submit(ctx: Ctx) -> None:
    connection_id = _connection_id(ctx)
    flow.save_selection(ctx.runtime.store, ctx.team_id, connection_id, ctx.user_id, _selection(ctx))
    ctx.ack(response_action="update", view=info_modal(
        "Review the plan", ":hourglass_flowing_sand: Building the plan: reading Marketo's fields and counting records…"))
    ctx.later(show_plan, ctx.runtime, ctx.client, ctx.team_id, ctx.user_id, connection_id, ctx.submission.view.id)


def show_plan(runtime: Runtime, client: WebClient, team_id: str, user: str, connection_id: str, view_id: str) -> None:
    """Plan = selection + Marketo's existing fields + filtered record counts. Writes nothing to Marketo."""
    connection = runtime.store.get_connection(team_id, connection_id)
    selected = {Entity(e): names for e, names in connection.selected.items() if names}
    existing = {field.name for field in runtime.services.marketo().list_lead_fields()}
    with runtime.services.dataverse(team_id, connection_id) as dataverse:
        metadata = {e: runtime.metadata.get(team_id, connection_id, dataverse, e) for e in selected}
        counts = count_records(dataverse, metadata)
    plan = build_plan(metadata, selected, existing, counts)
    flow.save_plan(runtime.store, team_id, connection_id, user, plan)
    client.views_update(view_id=view_id, view=plan_modal(connection_id, plan, counts))


def on_plan_submit(ctx: Ctx) -> None:
    open_step3(ctx, _connection_id(ctx))


OPTIONS = {ids.fields_action_id(entity): on_options for entity in Entity}
ACTIONS = {ids.REFRESH_FIELDS_ACTION: on_refresh,
           **{ids.fields_action_id(entity): lambda ctx: ctx.ack() for entity in Entity}}
VIEWS = {ids.FIELDS_CALLBACK: on_submit, ids.PLAN_CALLBACK: on_plan_submit}
