"""Step 2: the field picker (searches served from cached metadata), refresh, and the plan."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from slack_sdk import WebClient
from slack_sdk.models.blocks import Block, Option
from slack_sdk.models.views import View

from bot import flow
from bot.approvals import ApprovalService
from bot.custom_object_models import CustomObjectPlan, RefusedColumn
from bot.dynamics.errors import DataverseAccessDenied, DataverseNotFound
from bot.dynamics.metadata import MetadataCache
from bot.dynamics.users import count_owner_candidates
from bot.errors import BotError, FlowError
from bot.models import Approval, Connection, Entity, EntityMetadata, FieldPlan, FlowState
from bot.steps.ports import DataverseFactory, MarketoFactory
from bot.store import Store
from bot.sync import opportunities
from bot.sync.custom_objects import (
    ReachableTable,
    api_name,
    plan_custom_objects,
    reachable_tables,
    syncable_columns,
)
from bot.sync.directions import TWO_WAY_ENTITIES, DirectionChoices, DirectionError, settle
from bot.sync.fields_change import plan_change
from bot.sync.mapping import build_plan, default_selection, detect_sync_filter, selectable
from bot.sync.planning import count_records
from bot.views import ids
from bot.views.columns import TableColumnsView, columns_modal
from bot.views.common import error_modal, info_modal
from bot.views.custom_objects import custom_change_lines, custom_tables_block
from bot.views.directions import EntityDirectionsView, directions_modal
from bot.views.fields import EntityFieldsView, change_plan_modal, fields_modal, options_for, plan_modal

LOADING_FIELDS = ":hourglass_flowing_sand: Reading the fields of your Dynamics org…"
BUILDING_PLAN = ":hourglass_flowing_sand: Building the plan: reading Marketo's fields and counting records…"
GONE = "This connection no longer exists. Run /connect-dynamics again."


def reading_fields() -> View:
    """Shown at once while `load_fields` reads Dynamics."""
    return info_modal("Select fields", LOADING_FIELDS)


def _metadata(metadata: MetadataCache, dataverse: DataverseFactory, team_id: str, connection_id: str,
              refresh: bool) -> dict[Entity, EntityMetadata]:
    found: dict[Entity, EntityMetadata] = {}
    with dataverse(team_id, connection_id) as client:
        for entity in Entity:
            try:
                found[entity] = metadata.get(team_id, connection_id, client, entity, refresh=refresh)
            except (DataverseNotFound, DataverseAccessDenied):
                if entity not in opportunities.OPTIONAL_ENTITIES:
                    raise
    return found


def load_fields(store: Store, metadata: MetadataCache, dataverse: DataverseFactory, team_id: str,
                connection_id: str | None, refresh: bool = False) -> View:
    """The field picker, the saved selection (else Marketo's defaults) pre-selected, and the custom tables
    that can be synced."""
    connection = store.get_connection(team_id, connection_id) if connection_id else None
    if connection is None:
        raise FlowError(GONE)
    return fields_modal(connection.id, _entity_views(metadata, dataverse, team_id, connection, refresh),
                        custom=_custom_picker(metadata, dataverse, connection, refresh))


def _custom_picker(metadata: MetadataCache, dataverse: DataverseFactory, connection: Connection,
                   refresh: bool) -> list[Block]:
    """The custom tables that can be synced, the connection's choice pre-selected."""
    with dataverse(connection.team_id, connection.id) as client:
        found = metadata.custom_tables(connection.team_id, connection.id, client, refresh=refresh)
    return custom_tables_block(reachable_tables(found), connection.custom_tables, connection.id)


def _entity_views(metadata: MetadataCache, dataverse: DataverseFactory, team_id: str, connection: Connection,
                  refresh: bool) -> list[EntityFieldsView]:
    per_entity = []
    for entity, entity_metadata in _metadata(metadata, dataverse, team_id, connection.id, refresh).items():
        names = connection.selected.get(entity.value) or default_selection(entity_metadata)
        chosen = [a for a in (entity_metadata.attribute(n) for n in names) if a is not None]
        per_entity.append(EntityFieldsView(
            entity=entity, selected=chosen, filter_status=detect_sync_filter(entity_metadata),
            attribute_count=len(selectable(entity_metadata)),
        ))
    return per_entity


def field_options(store: Store, metadata: MetadataCache, team_id: str, connection_id: str | None, action_id: str,
                  typed: str) -> list[Option]:
    """Answer a field search from the Redis cache only, so it is fast for 400+ attributes."""
    entity = ids.entity_of_fields_action(action_id)
    cached = metadata.cached(team_id, connection_id, entity) if entity and connection_id else None
    if entity is None or connection_id is None or cached is None:
        return []
    connection = store.get_connection(team_id, connection_id)
    selected = connection.selected.get(entity.value, []) if connection else []
    return options_for(cached.attributes, typed, selected, entity=entity)


def refresh_fields(store: Store, metadata: MetadataCache, dataverse: DataverseFactory, team_id: str, user: str,
                   connection_id: str | None, selection: dict[str, list[str]]) -> View:
    """Re-read metadata from Dynamics (fields added since the first look), keeping what is selected."""
    if connection_id and any(selection.values()):
        flow.save_selection(store, team_id, connection_id, user, selection)
    return load_fields(store, metadata, dataverse, team_id, connection_id, refresh=True)


def choose_fields(store: Store, team_id: str, user: str, connection_id: str | None,
                  selection: dict[str, list[str]], custom_tables: list[str] | None = None) -> View:
    """Save the selection; the returned modal stands while `build_the_plan` runs."""
    if not connection_id:
        raise FlowError(GONE)
    flow.save_selection(store, team_id, connection_id, user, selection, custom_tables)
    return info_modal("Review the plan", BUILDING_PLAN)


STALE_FIELDS = "The fields of your Dynamics org are no longer cached. Press “Refresh fields from Dynamics” first."


def push_directions(store: Store, metadata: MetadataCache, slack: WebClient, team_id: str,
                    connection_id: str | None, selection: Mapping[str, list[str]], trigger_id: str) -> None:
    """Push the directions modal over the field picker (built from Redis only: the trigger lasts 3 s)."""
    slack.views_push(trigger_id=trigger_id, view=directions_view(store, metadata, team_id, connection_id, selection))


def directions_view(store: Store, metadata: MetadataCache, team_id: str, connection_id: str | None,
                    selection: Mapping[str, list[str]]) -> View:
    """The directions modal for the fields selected in the picker now, with the connection's saved choices."""
    connection = store.get_connection(team_id, connection_id) if connection_id else None
    if connection is None:
        raise FlowError(GONE)
    per_entity = []
    for entity in Entity:
        names = selection.get(entity.value) or []
        cached = metadata.cached(team_id, connection.id, entity) if names else None
        if names and cached is None:
            raise FlowError(STALE_FIELDS)
        chosen = [a for a in (cached.attribute(n) for n in names) if a is not None] if cached else []
        per_entity.append(EntityDirectionsView(
            entity=entity, fields=chosen, directions=connection.directions.get(entity.value, {}),
            winners=connection.winners.get(entity.value, {})))
    return directions_modal(connection.id, per_entity)


def choose_directions(store: Store, team_id: str, user: str, connection_id: str | None,
                      choices: Mapping[Entity, DirectionChoices]) -> dict[str, str]:
    """Save the directions chosen; the inline errors (block id -> text) instead when a choice is refused."""
    connection = store.get_connection(team_id, connection_id) if connection_id else None
    if connection is None:
        raise FlowError(GONE)
    errors: dict[str, str] = {}
    directions, winners = {}, {}
    for entity, chosen in choices.items():
        if entity not in TWO_WAY_ENTITIES:
            continue
        try:
            directions[entity.value], winners[entity.value] = settle(entity, chosen)
        except DirectionError as exc:
            errors[ids.direction_block_id(entity, "to_dynamics")] = exc.user_message
    if not errors:
        flow.save_directions(store, team_id, connection.id, user, directions, winners,
                             change=connection.state == FlowState.synced)
    return errors


READING_COLUMNS = ":hourglass_flowing_sand: Reading the columns of the picked tables from Dynamics…"


def push_columns(store: Store, metadata: MetadataCache, dataverse: DataverseFactory, slack: WebClient,
                 team_id: str, connection_id: str | None, tables: list[str], trigger_id: str) -> None:
    """Push the columns modal over the field picker: a notice at once (the trigger lasts 3 s), then the
    columns read from Dynamics (they are not cached: an org may have hundreds of custom tables)."""
    connection = store.get_connection(team_id, connection_id) if connection_id else None
    if connection is None:
        raise FlowError(GONE)
    pushed = slack.views_push(trigger_id=trigger_id, view=info_modal("Custom table columns", READING_COLUMNS))
    try:
        view = columns_view(metadata, dataverse, connection, tables)
    except BotError as exc:  # shown in the pushed view: the picker under it (the root view) keeps its choices
        view = error_modal(exc.user_message)
    slack.views_update(view_id=pushed["view"]["id"], view=view)


def columns_view(metadata: MetadataCache, dataverse: DataverseFactory, connection: Connection,
                 tables: list[str]) -> View:
    """The columns modal for the custom tables picked now, with the connection's saved choices."""
    with dataverse(connection.team_id, connection.id) as client:
        reachable = _reachable_with_columns(metadata, client, connection, tables)
    shown = [TableColumnsView(table=name, display_name=reachable[name].table.display_name,
                              columns=syncable_columns(reachable[name]), chosen=connection.custom_columns.get(name))
             for name in dict.fromkeys(tables) if name in reachable]
    return columns_modal(connection.id, shown)


def choose_columns(store: Store, team_id: str, user: str, connection_id: str | None,
                   columns: Mapping[str, list[str]]) -> None:
    """Save the columns chosen per custom table (the tables the modal showed), in Step 2 or for a change."""
    connection = store.get_connection(team_id, connection_id) if connection_id else None
    if connection is None:
        raise FlowError(GONE)
    flow.save_custom_columns(store, team_id, connection.id, user, columns,
                             change=connection.state == FlowState.synced)


def _reachable_with_columns(metadata: MetadataCache, client: Any, connection: Connection,
                            tables: list[str]) -> dict[str, ReachableTable]:
    """The custom tables reaching a person, by name, those in `tables` with their columns read."""
    found = metadata.custom_tables(connection.team_id, connection.id, client)
    return {r.table.logical_name: r for r in reachable_tables(client.with_columns(found, tables))}


def _plan(metadata: MetadataCache, dataverse: DataverseFactory, marketo: MarketoFactory, team_id: str,
          connection: Connection, selection: Mapping[str, list[str]],
          custom_tables: list[str]) -> tuple[FieldPlan, dict[Entity, int]]:
    """Plan = selection and directions + Marketo's existing fields + filtered record counts + owners + the
    custom tables' objects. Writes nothing to Marketo."""
    selected = {Entity(e): names for e, names in selection.items() if names}
    existing = {field.name for field in marketo().list_lead_fields()}
    with dataverse(team_id, connection.id) as client:
        entity_metadata = {e: metadata.get(team_id, connection.id, client, e) for e in selected}
        counts = count_records(client, entity_metadata)
        roles = opportunities.count_roles(client, detect_sync_filter(entity_metadata[Entity.opportunity]).applies) \
            if Entity.opportunity in entity_metadata else None
        plan = build_plan(entity_metadata, selected, existing, counts, directions=connection.directions,
                          winners=connection.winners)
        if (opportunity_plan := plan.for_entity(Entity.opportunity)) is not None:
            opportunity_plan.role_count = roles
        if any(ep.owner_lookup for ep in plan.entities):
            plan.owners = count_owner_candidates(client)
        if custom_tables:
            reachable = _reachable_with_columns(metadata, client, connection, custom_tables)
            plan.custom_objects, plan.custom_refused = _custom_objects(reachable, marketo, connection, custom_tables)
    return plan, counts


def _custom_objects(reachable: dict[str, ReachableTable], marketo: MarketoFactory, connection: Connection,
                    tables: list[str]) -> tuple[list[CustomObjectPlan], list[RefusedColumn]]:
    """The chosen custom tables' Marketo custom objects, with the columns chosen for each (by default every
    column), and the tables refused whole. Limits are checked against the instance's types, which include
    those the connection made."""
    selected = {name: connection.custom_columns.get(name, [a.logical_name for a in reachable[name].table.attributes]
                                                    if name in reachable else []) for name in tables}
    client = marketo()
    types = client.custom_object_types()
    fields = {api: client.custom_object_fields(api) for api in map(api_name, selected) if api in types}
    return plan_custom_objects(list(reachable.values()), selected, types, fields)


def build_the_plan(store: Store, metadata: MetadataCache, dataverse: DataverseFactory, marketo: MarketoFactory,
                   team_id: str, user: str, connection_id: str, bulk_min: int | None = None) -> View:
    """Plan = selection + Marketo's existing fields + filtered record counts. Writes nothing to Marketo.
    `bulk_min` (BULK_IMPORT_MIN_RECORDS) lets the plan say which entity will load through Bulk Import."""
    connection = store.get_connection(team_id, connection_id)
    if connection is None:
        raise FlowError(GONE)
    plan, counts = _plan(metadata, dataverse, marketo, team_id, connection, connection.selected,
                         connection.custom_tables)
    plan.bulk_import_min_records = bulk_min
    flow.save_plan(store, team_id, connection_id, user, plan)
    return plan_modal(connection_id, plan, counts)


# -- a change of fields after go-live (`/connect-dynamics fields`) --------------------------------------------

NOT_SYNCED = ("Fields can be changed once the connection is synced. Run /connect-dynamics status to see where "
              "things stand.")
NO_CHANGE = "That is the selection already synced: nothing to change."
CHANGE_SENT = ("Your change of fields is sent to the team leads. Nothing changes in Marketo until one approves; "
               "the sync goes on meanwhile.")


def _synced(store: Store, team_id: str, connection_id: str | None) -> tuple[Connection, FieldPlan]:
    """The synced connection (and its plan) whose fields may change now; FlowError otherwise."""
    connection = store.get_connection(team_id, connection_id) if connection_id else store.active_connection(team_id)
    if connection is None or connection.plan is None or connection.state != FlowState.synced:
        raise FlowError(NOT_SYNCED)
    if connection.change_approval_id:
        raise FlowError(flow.CHANGE_PENDING)
    return connection, connection.plan


def open_change(store: Store, metadata: MetadataCache, dataverse: DataverseFactory, slack: WebClient, team_id: str,
                trigger_id: str) -> None:
    """Reopen Step 2 on a synced connection, the current selection, directions and custom tables chosen,
    fields and tables re-read from Dynamics."""
    connection, current = _synced(store, team_id, None)
    connection = flow.restore_choices(store, team_id, connection.id, current)
    opened = slack.views_open(trigger_id=trigger_id, view=reading_fields())
    picker = fields_modal(connection.id, _entity_views(metadata, dataverse, team_id, connection, True), change=True,
                          custom=_custom_picker(metadata, dataverse, connection, True))
    slack.views_update(view_id=opened["view"]["id"], view=picker)


def choose_change(store: Store, team_id: str, connection_id: str | None, selection: dict[str, list[str]]) -> View:
    """The change's selection is checked; the returned modal stands while `build_change_plan` runs."""
    _synced(store, team_id, connection_id)
    if not any(selection.values()):
        raise FlowError("Select at least one field to sync.")
    return info_modal("Review the change", BUILDING_PLAN)


def build_change_plan(store: Store, metadata: MetadataCache, dataverse: DataverseFactory, marketo: MarketoFactory,
                      team_id: str, user: str, connection_id: str, selection: dict[str, list[str]],
                      custom_tables: list[str] | None = None) -> View:
    """The plan of the change (added, removed, Marketo fields and custom objects to create), kept beside the
    connection's. `custom_tables` None: the picker offered none, the connection's stay."""
    connection, current = _synced(store, team_id, connection_id)
    tables = connection.custom_tables if custom_tables is None else list(dict.fromkeys(custom_tables))
    plan, _ = _plan(metadata, dataverse, marketo, team_id, connection, selection, tables)
    change = plan_change(current, plan)
    if change.empty:
        return info_modal("Change fields", "\n".join([NO_CHANGE, *custom_change_lines(change)]))  # what was refused
    flow.propose_fields_change(store, team_id, connection.id, user, selection, plan)
    return change_plan_modal(connection.id, change)


def request_change(store: Store, approvals: ApprovalService, team_id: str, user: str,
                   connection_id: str | None) -> Approval:
    """Ask the team leads to approve the proposed change (the same rules as a sync request)."""
    connection, current = _synced(store, team_id, connection_id)
    if connection.pending_plan is None:
        raise FlowError("There is no change of fields to approve. Run /connect-dynamics fields again.")
    change = plan_change(current, connection.pending_plan)
    return approvals.request_fields_change(team_id, connection.id, user, change)


def change_sent() -> View:
    return info_modal("Sent for approval", CHANGE_SENT)
