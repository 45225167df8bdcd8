"""Step 2's custom-table picker, and the custom objects the plan modal and the approval show."""

from __future__ import annotations

from bot.custom_object_models import TableLookup
from bot.dynamics.custom_tables import CustomTableMeta
from bot.models import Approval, AttributeMeta, Connection, FieldPlan
from bot.sync.custom_objects import plan_custom_objects, reachable_tables
from bot.views import ids
from bot.views.approval import approval_request_message
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
    blocks = custom_tables_block(reachable, ["new_project"])
    picker = blocks[0].to_dict()
    assert picker["block_id"] == ids.CUSTOM_TABLES_BLOCK and picker["label"]["text"] == "Custom tables to sync"
    assert [o["value"] for o in picker["element"]["options"]] == ["new_project"]
    assert [o["value"] for o in picker["element"]["initial_options"]] == ["new_project"]
    assert "new_branch" in str(blocks[1].to_dict()) and "links to a person" in str(blocks[1].to_dict())
    modal = fields_modal("c1", [], custom=blocks).to_dict()
    assert ids.CUSTOM_TABLES_BLOCK in [b.get("block_id") for b in modal["blocks"]]
    many = reachable_tables([_table(f"new_t{i:03d}", f"T {i}", "lead") for i in range(130)])
    assert len(custom_tables_block(many, [])[0].to_dict()["element"]["options"]) == MAX_OPTIONS
    assert custom_tables_block([], []) == []


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
