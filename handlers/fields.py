"""Step 2: the field picker (options served from cached metadata), refresh, and the plan."""

from __future__ import annotations

from bot.models import Entity
from bot.roles import CONNECT
from bot.slack_payloads import ActionPayload, SlackView, SuggestionPayload, ViewPayload
from bot.steps import confirm, fields
from bot.sync.directions import TWO_WAY_ENTITIES, DirectionChoices
from bot.views import ids
from bot.views.kit import ViewMetadata
from handlers.context import Ctx, Route


def _connection_id(view: SlackView | None) -> str | None:
    return ViewMetadata.parse(view.private_metadata if view else None).connection_id


def _selection(view: SlackView | None) -> dict[str, list[str]]:
    chosen = {}
    for entity in Entity:
        values = view.value(ids.fields_block_id(entity), ids.fields_action_id(entity)) if view else None
        if values is not None:
            chosen[entity.value] = list(values)
    return chosen


def _custom_tables(view: SlackView | None) -> list[str] | None:
    """The custom tables picked (None when the picker did not offer any)."""
    values = view.value(ids.CUSTOM_TABLES_BLOCK, ids.CUSTOM_TABLES_ACTION) if view else None
    return list(values) if values is not None else None


def _columns(view: SlackView) -> dict[str, list[str]]:
    """The columns modal's lists, by custom table (the tables it showed)."""
    return {table: list(view.value(block_id, ids.columns_action_id(table)) or [])
            for block_id in view.values() if (table := ids.table_of_columns_block(block_id)) is not None}


def _choices(view: SlackView) -> dict[Entity, DirectionChoices]:
    """The directions modal's lists, for the entities it showed (an entity with no input is left as it was)."""
    chosen = {}
    for entity in TWO_WAY_ENTITIES:
        lists = {which: view.value(ids.direction_block_id(entity, which), ids.direction_action_id(entity, which))
                 for which in ids.DIRECTION_INPUTS}
        if any(values is not None for values in lists.values()):
            chosen[entity] = DirectionChoices(to_marketo=lists["to_marketo"] or [],
                                              to_dynamics=lists["to_dynamics"] or [],
                                              other_wins=lists["winner"] or [])
    return chosen


def on_options(ctx: Ctx[SuggestionPayload]) -> None:
    suggestion = ctx.payload
    ctx.ack(options=fields.field_options(ctx.container.store, ctx.container.metadata, ctx.team_id,
                                         _connection_id(suggestion.view), suggestion.action_id, suggestion.value))


def on_select(ctx: Ctx[ActionPayload]) -> None:
    """Choosing an option needs no answer: the selection is read when the form is submitted."""
    ctx.ack()


def on_refresh(ctx: Ctx[ActionPayload]) -> None:
    view = ctx.payload.view
    connection_id = ctx.payload.action.value or _connection_id(view)
    container = ctx.container
    ctx.ack()
    ctx.fill_modal(fields.refresh_fields, container.store, container.metadata, container.dataverse, ctx.team_id,
                   ctx.user_id, connection_id, _selection(view))


def on_directions(ctx: Ctx[ActionPayload]) -> None:
    """Push the directions modal over the picker, for the fields selected in it now (from Redis: fast)."""
    view = ctx.payload.view
    container = ctx.container
    ctx.ack()
    fields.push_directions(container.store, container.metadata, ctx.client, ctx.team_id,
                           ctx.payload.action.value or _connection_id(view), _selection(view), ctx.payload.trigger_id)


def on_directions_submit(ctx: Ctx[ViewPayload]) -> None:
    """Save the directions and return to the picker; a refused choice is shown beside its list."""
    view = ctx.payload.view
    errors = fields.choose_directions(ctx.container.store, ctx.team_id, ctx.user_id, _connection_id(view),
                                      _choices(view))
    if errors:
        ctx.ack(response_action="errors", errors=errors)
    else:
        ctx.ack()


def on_columns(ctx: Ctx[ActionPayload]) -> None:
    """Push the columns modal over the picker, for the custom tables picked in it now (read after the ack)."""
    view = ctx.payload.view
    container = ctx.container
    ctx.ack()
    ctx.later(fields.push_columns, container.store, container.metadata, container.dataverse, ctx.client, ctx.team_id,
              ctx.payload.action.value or _connection_id(view), _custom_tables(view) or [], ctx.payload.trigger_id)


def on_columns_submit(ctx: Ctx[ViewPayload]) -> None:
    """Save the columns chosen and return to the picker."""
    view = ctx.payload.view
    fields.choose_columns(ctx.container.store, ctx.team_id, ctx.user_id, _connection_id(view), _columns(view))
    ctx.ack()


def on_submit(ctx: Ctx[ViewPayload]) -> None:
    view = ctx.payload.view
    container = ctx.container
    connection_id = _connection_id(view)
    ctx.ack(response_action="update",
            view=fields.choose_fields(container.store, ctx.team_id, ctx.user_id, connection_id, _selection(view),
                                      _custom_tables(view)))
    ctx.fill_modal(fields.build_the_plan, container.store, container.metadata, container.dataverse,
                   container.marketo, ctx.team_id, ctx.user_id, connection_id,
                   container.settings.BULK_IMPORT_MIN_RECORDS)


def on_change_submit(ctx: Ctx[ViewPayload]) -> None:
    """A change of fields after go-live: its plan is built after the ack."""
    view = ctx.payload.view
    container = ctx.container
    connection_id = _connection_id(view)
    selection = _selection(view)
    ctx.ack(response_action="update", view=fields.choose_change(container.store, ctx.team_id, connection_id,
                                                                 selection))
    ctx.fill_modal(fields.build_change_plan, container.store, container.metadata, container.dataverse,
                   container.marketo, ctx.team_id, ctx.user_id, connection_id, selection, _custom_tables(view))


def on_change_plan_submit(ctx: Ctx[ViewPayload]) -> None:
    """Ask for approval of the change; the request is posted after the ack."""
    container = ctx.container
    approval = fields.request_change(container.store, container.approvals, ctx.team_id, ctx.user_id,
                                     _connection_id(ctx.payload.view))
    ctx.ack(response_action="update", view=fields.change_sent())
    channel = container.workspaces.get(ctx.team_id).approval_channel
    ctx.later(confirm.post_request, container.store, container.approvals, container.approvals.effects, ctx.client,
              channel, container.roles.for_team(ctx.team_id).leads, approval)


OPTIONS = {ids.fields_action_id(entity): Route(on_options, CONNECT) for entity in Entity}
ACTIONS = {ids.REFRESH_FIELDS_ACTION: Route(on_refresh, CONNECT), ids.DIRECTIONS_ACTION: Route(on_directions, CONNECT),
           ids.COLUMNS_ACTION: Route(on_columns, CONNECT),
           **{ids.fields_action_id(entity): Route(on_select) for entity in Entity}}
VIEWS = {ids.FIELDS_CALLBACK: Route(on_submit, CONNECT), ids.DIRECTIONS_CALLBACK: Route(on_directions_submit, CONNECT),
         ids.COLUMNS_CALLBACK: Route(on_columns_submit, CONNECT),
         ids.FIELDS_CHANGE_CALLBACK: Route(on_change_submit, CONNECT),
         ids.FIELDS_CHANGE_PLAN_CALLBACK: Route(on_change_plan_submit, CONNECT)}
