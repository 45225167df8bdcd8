"""Which columns of each picked custom table sync: the columns modal pushed from Step 2's custom-table
picker (the picker itself is in `bot.views.custom_objects`)."""

from __future__ import annotations

from pydantic import BaseModel
from slack_sdk.models.blocks import Block, InputBlock, StaticMultiSelectElement
from slack_sdk.models.views import View

from bot.models import AttributeMeta
from bot.sync.custom_objects import MAX_OBJECT_COLUMNS
from bot.views import ids
from bot.views.fields import attribute_option
from bot.views.kit import (
    MAX_OPTION_TEXT,
    MAX_OPTIONS,
    ViewMetadata,
    context,
    cut,
    escape,
    modal,
    number,
    section,
)


class TableColumnsView(BaseModel):
    """What the columns modal shows for one picked table: the columns it can sync and the saved choice
    (None: never chosen, so every syncable column is planned)."""

    table: str
    display_name: str
    columns: list[AttributeMeta]
    chosen: list[str] | None = None


def _columns_blocks(view: TableColumnsView) -> list[Block]:
    title = f"*{escape(view.display_name)}* (`{escape(view.table)}`)"
    if not view.columns:
        return [section(f"{title} has no column that can sync to Marketo: only its id and person link are written.")]
    offered = view.columns[:MAX_OPTIONS]
    options = [attribute_option(a) for a in offered]
    chosen = set(view.chosen) if view.chosen is not None else {a.logical_name for a in offered}
    initial = [o for o in options if o.value in chosen][:MAX_OBJECT_COLUMNS]
    blocks: list[Block] = [InputBlock(
        block_id=ids.columns_block_id(view.table), label=cut(f"{view.display_name} columns", MAX_OPTION_TEXT),
        hint=f"{number(len(view.columns))} columns can sync; Marketo takes at most {MAX_OBJECT_COLUMNS}.",
        element=StaticMultiSelectElement(action_id=ids.columns_action_id(view.table), options=options,
                                         initial_options=initial or None, max_selected_items=MAX_OBJECT_COLUMNS,
                                         placeholder="Choose columns"))]
    if len(view.columns) > MAX_OPTIONS:
        blocks.append(context(f":warning: {title}: only the first {MAX_OPTIONS} of its {number(len(view.columns))} "
                              "columns can be chosen here."))
    return blocks


def columns_modal(connection_id: str, tables: list[TableColumnsView]) -> View:
    """Pushed from Step 2: one multi-select per picked custom table, the columns its custom object gets."""
    blocks: list[Block] = [section(
        "Choose the columns each custom table syncs to its Marketo custom object (the record's id and its "
        "person link are always written). *Save* returns to the field picker.")]
    for view in tables:
        blocks += _columns_blocks(view)
    if not tables:
        blocks.append(section("No custom table is picked yet: pick some first."))
    return modal("Custom table columns", ids.COLUMNS_CALLBACK, blocks, submit="Save", close="Back",
                 metadata=ViewMetadata(connection_id=connection_id))
