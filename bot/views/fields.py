"""Step 2 — Select fields to sync: the per-entity searchable selects, their options, and the plan."""

from __future__ import annotations

from collections.abc import Iterable

from pydantic import BaseModel
from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    DividerBlock,
    ExternalDataMultiSelectElement,
    HeaderBlock,
    InputBlock,
    Option,
)
from slack_sdk.models.views import View

from bot.models import AttributeMeta, Entity, EntityPlan, FieldPlan, FieldsChange
from bot.sync.identity import ACCOUNT_DELETED_FIELD
from bot.sync.links import COMPANY_ID, SALES_PERSON_ID, TEAM_OWNED
from bot.sync.mapping import (
    DEFAULT_MAPPING,
    PERSON_ENTITIES,
    SyncFilterStatus,
    how_to_track_changes,
    is_syncable,
    search_attributes,
    standard_only_note,
)
from bot.sync.write_path import path_text
from bot.views import ids
from bot.views.custom_objects import CUSTOM_OBJECT_FIXED, custom_change_lines, custom_object_blocks
from bot.views.direction_text import direction_lines, mark
from bot.views.kit import (
    ENTITY_PLURAL,
    MAX_OPTION_TEXT,
    MAX_OPTIONS,
    ViewMetadata,
    button,
    context,
    cut,
    escape,
    limited_lines,
    modal,
    number,
    option,
    section,
    sections,
)

MAX_PLAN_LINES = 200  # per list in the plan modal; the rest is counted, not listed
DIRECTIONS_HINT = ("Lead and contact fields sync both ways (Marketo's changes are written back to Dynamics); "
                   "*Directions…* makes some one way or changes who wins a collision.")


class EntityFieldsView(BaseModel):
    """What the field picker shows for one entity."""

    entity: Entity
    selected: list[AttributeMeta]  # the saved selection, or the default one
    filter_status: SyncFilterStatus
    attribute_count: int  # how many attributes can be chosen from


def option_label(attr: AttributeMeta) -> str:
    """`Display (logical)` in ≤75 characters, shortening the display name first so the logical name shows."""
    if len(attr.label) <= MAX_OPTION_TEXT:
        return attr.label
    room = MAX_OPTION_TEXT - len(attr.logical_name) - 3
    if room < 8:
        return cut(attr.label, MAX_OPTION_TEXT)
    return f"{cut(attr.display_name, room)} ({attr.logical_name})"


def attribute_option(attr: AttributeMeta) -> Option:
    return option(option_label(attr), attr.logical_name)


def options_for(
    attributes: list[AttributeMeta], query: str, selected: Iterable[str] = (), *, entity: Entity | None = None,
) -> list[Option]:
    """The options for a `block_suggestion`: best matches for `query`, never more than 100.

    Only syncable attributes are offered; for accounts (when `entity` is given) only the
    default-mapped ones, because Marketo cannot create company fields.
    """
    pool = [a for a in attributes if is_syncable(a)]
    if entity is not None and entity not in PERSON_ENTITIES:
        pool = [a for a in pool if a.logical_name in DEFAULT_MAPPING[entity]]
    return [attribute_option(a) for a in search_attributes(pool, query, MAX_OPTIONS, selected=selected,
                                                           entity=entity)]


def _entity_blocks(view: EntityFieldsView) -> list[Block]:
    name = ENTITY_PLURAL[view.entity]
    initial = [attribute_option(a) for a in view.selected[:MAX_OPTIONS]]
    select = ExternalDataMultiSelectElement(
        action_id=ids.fields_action_id(view.entity), min_query_length=0,
        placeholder=f"Search {number(view.attribute_count)} {view.entity.value} fields",
        initial_options=initial or None, max_selected_items=MAX_OPTIONS,
    )
    notes = [(":white_check_mark: " if view.filter_status.applies else ":information_source: ")
             + escape(view.filter_status.message)]
    if (note := standard_only_note(view.entity)) is not None:
        notes.append(escape(note))
    if len(view.selected) > MAX_OPTIONS:
        notes.append(f":warning: Only {MAX_OPTIONS} fields per entity can be selected in one list; "
                     f"{len(view.selected) - MAX_OPTIONS} of the saved selection are not shown.")
    return [
        InputBlock(
            block_id=ids.fields_block_id(view.entity), label=f"{name} fields", element=select, optional=True,
            hint="Type to search by name or logical name. Marketo's default fields are pre-selected.",
        ),
        context(*notes),
    ]


def fields_modal(connection_id: str, per_entity: list[EntityFieldsView], refreshing: bool = False,
                 change: bool = False, custom: list[Block] | None = None) -> View:
    """Step 2: one searchable multi-select per entity (options served by `options_for`). With `change`,
    the same picker for a change of fields after go-live (the metadata was just re-read: no refresh)."""
    intro = ("*Step 2 of 3 — Select fields to sync*\nEvery field you pick is written to Marketo; fields Marketo "
             "does not have yet are created as custom fields after approval. Leave an entity empty to skip it.")
    if change:
        intro = ("*Change the fields to sync*\nThe current selection is shown. Added fields are written into the "
                 "records already in Marketo after a team lead approves; removed fields stop syncing (nothing is "
                 "deleted in Marketo). The sync goes on meanwhile.")
    blocks: list[Block] = [section(intro)]
    for view in per_entity:
        blocks += _entity_blocks(view)
    blocks += custom or []
    directions = button("Directions…", ids.DIRECTIONS_ACTION, connection_id)
    if change:
        blocks += [ActionsBlock(block_id=ids.FIELDS_ACTIONS_BLOCK, elements=[directions]), context(DIRECTIONS_HINT)]
        return modal("Change fields", ids.FIELDS_CHANGE_CALLBACK, blocks, submit="Next",
                     metadata=ViewMetadata(connection_id=connection_id))
    blocks.append(DividerBlock())
    if refreshing:
        blocks.append(context(":hourglass_flowing_sand: Refreshing fields from Dynamics…"))
    else:
        blocks.append(ActionsBlock(block_id=ids.FIELDS_ACTIONS_BLOCK, elements=[
            directions, button("Refresh fields from Dynamics", ids.REFRESH_FIELDS_ACTION, connection_id),
        ]))
        blocks.append(context(f"{DIRECTIONS_HINT} Added a field in Dynamics since? Refresh to see it."))
    return modal("Select fields", ids.FIELDS_CALLBACK, blocks, submit="Next",
                 metadata=ViewMetadata(connection_id=connection_id))


def _filter_text(filter_attribute: str | None) -> str:
    if filter_attribute:
        return f"filter `{escape(filter_attribute)}` applied (records set to No are left out)"
    return "no filter (every record)"


def plan_summary_lines(plan: FieldPlan, counts: dict[Entity, int] | None = None) -> list[str]:
    """One line per entity: fields, records (count), filter. Shared by the plan modal and the approval."""
    lines = []
    for ep in plan.entities:
        count = (counts or {}).get(ep.entity, ep.record_count)
        records = f"{number(count)} records" if count is not None else "record count unknown"
        line = (f"• *{ENTITY_PLURAL[ep.entity]}* → {_target(ep)}, keyed on `{ep.id_field}`: "
                f"{len(ep.mappings)} fields, {records}, {_filter_text(ep.filter_attribute)}")
        if count is not None and plan.bulk_import_min_records is not None:
            line += f"\n    _{path_text(ep.entity, count, len(ep.mappings), plan.bulk_import_min_records)}_"
        lines.append(line)
    return lines + link_lines(plan)


def link_lines(plan: FieldPlan) -> list[str]:
    """How people link to their companies and records to their owners (`bot.sync.links`)."""
    lines = []
    linked = [ENTITY_PLURAL[ep.entity].lower() for ep in plan.entities if ep.company_lookup]
    if linked:
        lines.append(f"• *Companies*: {' and '.join(linked)} are linked to their parent account's Marketo company "
                     f"(`{COMPANY_ID}`), which shows its fields on the person or opportunity")
    if any(ep.owner_lookup for ep in plan.entities):
        users = f"{number(plan.owners)} Dynamics users" if plan.owners is not None else "Dynamics users"
        lines.append(f"• *Owners*: {users} → Marketo sales persons (`{SALES_PERSON_ID}`), upserted before the "
                     f"records they own. {TEAM_OWNED}")
    return lines


def _target(ep: EntityPlan) -> str:
    if ep.entity == Entity.opportunity:
        roles = f"{number(ep.role_count)} contact roles" if ep.role_count is not None else "their contact roles"
        return f"Marketo opportunities (+ {roles})"
    return "Marketo people" if ep.entity in PERSON_ENTITIES else "Marketo companies"


WATERMARK_FALLBACK = "change tracking off: synced by last-modified time (deletes not detected)"


def change_tracking_lines(plan: FieldPlan) -> list[str]:
    """One line per entity: is Dataverse change tracking on, and if not, how to turn it on and what happens meanwhile."""
    lines = []
    for ep in plan.entities:
        name = ENTITY_PLURAL[ep.entity]
        if ep.change_tracking:
            lines.append(f"• :white_check_mark: *{name}*: change tracking is on — changes and deletes in "
                         "Dynamics reach Marketo every few minutes.")
        else:
            lines.append(
                f"• :warning: *{name}*: change tracking is off in Dynamics. To turn it on: "
                f"{how_to_track_changes(ep.entity)}. Until then changes are synced by last-modified time (`modifiedon`), and records deleted "
                "in Dynamics are not detected.")
    return lines


def people_lines(plan: FieldPlan) -> list[str]:
    """How the sync keeps one Marketo person per human, and how account deletes are shown (`bot.sync.people`)."""
    planned = {ep.entity for ep in plan.entities}
    lines = []
    if {Entity.lead, Entity.contact} <= planned:
        lines.append("• A lead qualified into a contact stays *one Marketo person*, holding both ids; the contact's "
                     "values win from then on. Two persons that already exist for one human are merged, the "
                     "contact's person winning (each merge is in the audit log).")
    if planned & PERSON_ENTITIES:
        lines.append("• Leads or contacts merged in Dynamics are merged in Marketo: the merged-away record's person "
                     "goes into the master's.")
    if Entity.account in planned and planned & PERSON_ENTITIES:
        lines.append(f"• Marketo cannot mark a company as deleted (company fields cannot be created through its API): "
                     f"when an account is deleted in Dynamics, the people who worked there get "
                     f"`{ACCOUNT_DELETED_FIELD.name}` = true, and the company stays as it was.")
    return lines


def people_blocks(plan: FieldPlan) -> list[Block]:
    lines = people_lines(plan)
    return sections(lines, "*One person per human*") if lines else []


def fields_to_create_lines(plan: FieldPlan, limit: int = MAX_PLAN_LINES) -> list[str]:
    return limited_lines(
        (f"• `{escape(f.name)}` ({escape(f.data_type)}) — {escape(f.display_name)}" for f in plan.fields_to_create),
        limit, "fields",
    )


def plan_modal(connection_id: str, plan: FieldPlan, counts: dict[Entity, int] | None = None) -> View:
    """The end of Step 2: what will be created, what exists, and how many records per entity."""
    blocks: list[Block] = [
        HeaderBlock(text="The sync plan"),
        *sections(plan_summary_lines(plan, counts), "*Per entity*"),
        *sections(direction_lines(plan), "*Directions*"),
        *sections(change_tracking_lines(plan), "*Keeping in step after the first sync*"),
        *people_blocks(plan),
        *custom_object_blocks(plan),
    ]
    for note in dict.fromkeys(n for ep in plan.entities if (n := standard_only_note(ep.entity)) is not None):
        blocks.append(context(escape(note)))
    blocks.append(DividerBlock())
    if plan.fields_to_create:
        blocks += sections(fields_to_create_lines(plan),
                           f"*Marketo fields to create ({len(plan.fields_to_create)})*")
        blocks.append(section(":warning: *Marketo fields cannot be deleted once created* (only hidden), and "
                              "their type cannot be changed. They are created only after a team lead approves."))
    else:
        blocks.append(section("*No Marketo fields need to be created.*"))
    if plan.fields_existing:
        blocks += sections(limited_lines((f"• `{escape(n)}`" for n in plan.fields_existing), MAX_PLAN_LINES, "fields"),
                           f"*Already in Marketo ({len(plan.fields_existing)})*")
    return modal("Review the plan", ids.PLAN_CALLBACK, blocks, submit="Next", close="Back",
                 metadata=ViewMetadata(connection_id=connection_id))


def fields_change_lines(change: FieldsChange) -> list[str]:
    """Per entity: the columns a change of fields adds (backfilled) with their directions, removes (no longer
    synced), and those whose direction or collision winner it changes; then its custom tables."""
    lines = []
    for entity in Entity:
        added, removed = change.added.get(entity.value, []), change.removed.get(entity.value, [])
        directions = change.directions.get(entity.value, [])
        new = {d.after.source: f" {mark(entity, d.after)}" for d in directions if d.before is None}
        if added:
            lines.append(f"• *{ENTITY_PLURAL[entity]}* — new: "
                         + ", ".join(f"`{escape(n)}`{new.get(n, '')}" for n in added)
                         + " (written into existing records, update only)")
        if removed:
            lines.append(f"• *{ENTITY_PLURAL[entity]}* — removed: " + ", ".join(f"`{escape(n)}`" for n in removed)
                         + " (stop syncing; nothing is deleted in Marketo)")
        if changed := [(d.after, d.before) for d in directions if d.before is not None]:
            lines.append(f"• *{ENTITY_PLURAL[entity]}* — direction changed: " + ", ".join(
                f"`{escape(after.source)}` {mark(entity, after)} (was {mark(entity, before)})"
                for after, before in changed))
    return lines + custom_change_lines(change) or ["No change."]


def change_plan_modal(connection_id: str, change: FieldsChange) -> View:
    """The plan of a change of fields: added and removed columns, the Marketo fields to create (irreversible)."""
    blocks: list[Block] = [HeaderBlock(text="The change of fields"),
                           *sections(limited_lines(fields_change_lines(change), MAX_PLAN_LINES, "lines"))]
    if change.fields_to_create:
        blocks += sections(limited_lines((f"• `{escape(f.name)}` ({escape(f.data_type)}) — {escape(f.display_name)} "
                                          "(new)" for f in change.fields_to_create), MAX_PLAN_LINES, "fields"),
                           f"*Marketo fields to create ({len(change.fields_to_create)})*")
        blocks.append(section(":warning: *Irreversible:* Marketo fields cannot be deleted once created (only "
                              "hidden), and their type cannot be changed. They are created only after a team "
                              "lead approves."))
    else:
        blocks.append(section("*No Marketo fields need to be created.*"))
    if change.objects_added:
        blocks.append(context(CUSTOM_OBJECT_FIXED))
    blocks.append(context("The incremental sync goes on meanwhile; after approval only the added columns are "
                          "written, into persons already in Marketo (none is created)."))
    return modal("Review the change", ids.FIELDS_CHANGE_PLAN_CALLBACK, blocks, submit="Ask for approval",
                 close="Back", metadata=ViewMetadata(connection_id=connection_id))
