"""Step 2's custom-table picker, and the custom objects the plan modal and the approval show."""

from __future__ import annotations

from bot.custom_object_models import TableLookup
from bot.dynamics.custom_tables import CustomTableMeta
from bot.models import Approval, AttributeMeta, Connection, FieldPlan
from bot.sync.custom_objects import (
    MAX_OBJECT_COLUMNS,
    plan_custom_objects,
    reachable_tables,
    syncable_columns,
)
from bot.views import ids
from bot.views.approval import approval_request_message
from bot.views.columns import TableColumnsView, columns_modal
from bot.views.custom_objects import custom_tables_block
from bot.views.fields import fields_modal, plan_modal
from bot.views.kit import MAX_OPTIONS


def _table(name: str, display: str, target: str, columns: int = 1) -> CustomTableMeta:
    return CustomTableMeta(
        logical_name=name, entity_set=f"{name}s", primary_id=f"{name}id", display_name=display,
        attributes=[AttributeMeta(logical_name=f"new_c{i}", display_name=f"<b>C{i}</b>", attribute_type="StringType")
                    for i in range(columns)],
        lookups=[TableLookup(table=name, attribute="new_personid", target=target)])


def test_the_picker_offers_syncable_tables_keeps_the_saved_choice_and_says_why_others_cannot() -> None:
    reachable = reachable_tables([_table("new_project", "Project", "contact"),
                                  _table("new_branch", "Branch <x>", "account")])
    blocks = custom_tables_block(reachable, ["new_project"], "c1")
    picker = blocks[0].to_dict()
    assert picker["block_id"] == ids.CUSTOM_TABLES_BLOCK and picker["label"]["text"] == "Custom tables to sync"
    assert [o["value"] for o in picker["element"]["options"]] == ["new_project"]
    assert [o["value"] for o in picker["element"]["initial_options"]] == ["new_project"]
    columns = blocks[1].to_dict()["elements"][0]
    assert (columns["action_id"], columns["value"]) == (ids.COLUMNS_ACTION, "c1")
    assert "new_branch" in str(blocks[-1].to_dict()) and "links to a person" in str(blocks[-1].to_dict())
    modal = fields_modal("c1", [], custom=blocks).to_dict()
    assert ids.CUSTOM_TABLES_BLOCK in [b.get("block_id") for b in modal["blocks"]]
    many = reachable_tables([_table(f"new_t{i:03d}", f"T {i}", "lead") for i in range(130)])
    assert len(custom_tables_block(many, [], "c1")[0].to_dict()["element"]["options"]) == MAX_OPTIONS
    assert custom_tables_block([], [], "c1") == []


def test_plan_modal_and_approval_show_the_object_type_and_its_fields_escaped() -> None:
    reachable = reachable_tables([_table("new_project", "Project", "contact", columns=3)])
    plans, _ = plan_custom_objects(reachable, {"new_project": ["new_c0", "new_c1", "new_c2"]}, set())
    plan = FieldPlan(entities=[], custom_objects=plans)
    text = str(plan_modal("c1", plan).to_dict())
    assert "Marketo custom objects to create (1)" in text and "`dynNewProject`" in text
    assert "`dynNewProjectId`" in text and "`dynamicsContactId`" in text and "new_project → contact" in text
    assert "<b>" not in text  # display names are fitted to Marketo's characters: no markup reaches Slack
    assert "`newC2` (string)" in text
    connection = Connection(team_id="T1", requester="U1", plan=plan)
    approval = Approval(team_id="T1", connection_id=connection.id, requester="U1", expires_at=1_800_000_000)
    assert "`dynNewProject`" in str(approval_request_message(approval, connection, plan).to_dict())
    assert "custom objects" not in str(plan_modal("c1", FieldPlan(entities=[])).to_dict())


def _columns_input(modal: dict, table: str) -> dict:
    return next(b for b in modal["blocks"] if b.get("block_id") == ids.columns_block_id(table))["element"]


def test_the_columns_modal_offers_each_picked_tables_syncable_columns_within_slacks_and_marketos_limits() -> None:
    [project] = reachable_tables([_table("new_project", "Project", "contact", columns=3)])
    project.table.attributes.append(AttributeMeta(logical_name="new_photo", display_name="Photo",
                                                  attribute_type="ImageType"))
    [wide] = reachable_tables([_table("new_wide", "Wide", "lead", columns=130)])
    modal = columns_modal("c1", [
        TableColumnsView(table="new_project", display_name="Project", columns=syncable_columns(project),
                         chosen=["new_c2", "new_gone"]),
        TableColumnsView(table="new_wide", display_name="Wide", columns=syncable_columns(wide)),
    ]).to_dict()
    assert modal["callback_id"] == ids.COLUMNS_CALLBACK and '"connection_id":"c1"' in modal["private_metadata"]
    chosen = _columns_input(modal, "new_project")
    assert [o["value"] for o in chosen["options"]] == ["new_c0", "new_c1", "new_c2"], "no image, id or link column"
    assert [o["value"] for o in chosen["initial_options"]] == ["new_c2"], "the saved choice"
    assert chosen["action_id"] == ids.columns_action_id("new_project")
    assert chosen["max_selected_items"] == MAX_OBJECT_COLUMNS
    default = _columns_input(modal, "new_wide")
    assert len(default["options"]) == MAX_OPTIONS
    assert [o["value"] for o in default["initial_options"]] == [f"new_c{i}" for i in range(MAX_OBJECT_COLUMNS)], \
        "never chosen: the columns the plan takes by default"
    assert "only the first 100 of its 130 columns" in str(modal)
    narrow = TableColumnsView(table="new_project", display_name="Project", columns=syncable_columns(project))
    assert "first 100" not in str(columns_modal("c1", [narrow]).to_dict())
    assert ids.table_of_columns_block(ids.columns_block_id("new_project")) == "new_project"
    assert ids.table_of_columns_block(ids.CUSTOM_TABLES_BLOCK) is None
    assert "pick some first" in str(columns_modal("c1", []).to_dict())
