"""How the plan's custom tables read in Slack: the Marketo custom object types and fields to create
(the plan modal and the approval request), what a change of fields does to them, and the custom-table
picker of Step 2."""

from __future__ import annotations

from slack_sdk.models.blocks import ActionsBlock, Block, InputBlock, Option, StaticMultiSelectElement

from bot.custom_object_models import CustomObjectPlan, RefusedColumn
from bot.models import FieldPlan, FieldsChange
from bot.sync.custom_objects import MAX_OBJECT_COLUMNS, ReachableTable
from bot.views import ids
from bot.views.kit import MAX_OPTION_TEXT, MAX_OPTIONS, button, context, cut, escape, limited_lines, sections

MAX_FIELDS_SHOWN = 20  # per custom object; the rest are counted
CUSTOM_OBJECT_FIXED = "A custom object's name, dedupe field and link field cannot change once approved in Marketo."
COLUMNS_HINT = (f"Every column a picked table can sync is planned, up to Marketo's {MAX_OBJECT_COLUMNS} per "
                "custom object; *Columns…* chooses which.")


def _object_lines(plan: CustomObjectPlan, fields_shown: int) -> list[str]:
    hops = " → ".join([plan.table, *(hop.target for hop in plan.link.hops)])
    lines = [f"• *{escape(plan.display_name)}* (`{escape(plan.api_name)}`) from `{escape(plan.table)}`, "
             f"deduped on `{escape(plan.dedupe_field)}`, linked to the person by `{escape(plan.link.field_name)}` "
             f"({escape(hops)})"]
    lines += limited_lines((f"    ◦ `{escape(f.name)}` ({escape(f.data_type)}) — {escape(f.display_name)}"
                            for f in plan.fields), fields_shown, "fields")
    lines += [f"    ◦ :no_entry_sign: `{escape(r.source)}` not synced: {escape(r.reason)}" for r in plan.refused]
    return lines


def _refused_lines(refused: list[RefusedColumn]) -> list[str]:
    return [f"• :no_entry_sign: custom table `{escape(r.source)}` not synced: {escape(r.reason)}" for r in refused]


def custom_object_blocks(plan: FieldPlan, fields_shown: int = MAX_FIELDS_SHOWN) -> list[Block]:
    """The custom object types to create and approve in Marketo, and the tables chosen that cannot be
    synced (neither: no blocks)."""
    if not plan.custom_objects and not plan.custom_refused:
        return []
    lines = [line for obj in plan.custom_objects for line in _object_lines(obj, fields_shown)]
    return [*sections(lines + _refused_lines(plan.custom_refused),
                      f"*Marketo custom objects to create ({len(plan.custom_objects)})* — one way, records upserted "
                      "after the people"),
            context(CUSTOM_OBJECT_FIXED)]


def custom_change_lines(change: FieldsChange, fields_shown: int = MAX_FIELDS_SHOWN) -> list[str]:
    """The custom tables a change of fields adds (types to create), gives other columns, and removes."""
    lines: list[str] = []
    if change.objects_added:
        lines.append(f"*Custom tables added ({len(change.objects_added)})* — their Marketo custom objects are "
                     "created and approved after approval, then all their records are synced:")
        lines += [line for o in change.objects_added for line in _object_lines(o, fields_shown)]
    for changed in change.objects_changed:
        name = f"• *Custom table* `{escape(changed.plan.table)}` (`{escape(changed.plan.api_name)}`)"
        if changed.added:
            lines.append(f"{name} — new columns: " + ", ".join(f"`{escape(n)}`" for n in changed.added)
                         + " (fields added to its custom object; all its records are synced again)")
        if changed.removed:
            lines.append(f"{name} — removed columns: " + ", ".join(f"`{escape(n)}`" for n in changed.removed)
                         + " (stop syncing; the fields stay in Marketo)")
    lines += [f"• *Custom table* `{escape(o.table)}` — removed: syncing stops; its Marketo custom object "
              f"`{escape(o.api_name)}` and its records stay in Marketo" for o in change.objects_removed]
    return lines + _refused_lines(change.objects_refused)


def custom_tables_block(reachable: list[ReachableTable], selected: list[str], connection_id: str) -> list[Block]:
    """Step 2's "Custom tables to sync" multi-select (≤ MAX_OPTIONS tables that can be synced) and the
    Columns… button that pushes `columns_modal` for the tables picked."""
    usable = [r for r in reachable if r.refusal is None][:MAX_OPTIONS]
    if not usable:
        return []
    options = [Option(value=r.table.logical_name, label=cut(
        f"{r.table.display_name} ({r.table.logical_name}) → {r.root}", MAX_OPTION_TEXT)) for r in usable]
    initial = [o for o in options if o.value in selected]
    refused = [f"`{escape(r.table.logical_name)}`: {escape(r.refusal)}" for r in reachable if r.refusal]
    blocks: list[Block] = [InputBlock(
        block_id=ids.CUSTOM_TABLES_BLOCK, label="Custom tables to sync", optional=True,
        element=StaticMultiSelectElement(action_id=ids.CUSTOM_TABLES_ACTION, options=options,
                                         initial_options=initial or None, placeholder="Pick custom tables"),
        hint="Synced one way to Marketo custom objects, each record linked to its lead or contact."),
        ActionsBlock(block_id=ids.CUSTOM_TABLES_ACTIONS_BLOCK,
                     elements=[button("Columns…", ids.COLUMNS_ACTION, connection_id)]),
        context(COLUMNS_HINT)]
    if refused:
        blocks.append(context(cut("Cannot be synced — " + "; ".join(refused), 2900)))
    return blocks
