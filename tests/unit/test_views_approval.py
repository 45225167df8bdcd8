import json

import pytest

from bot.models import (
    Approval,
    ApprovalKind,
    ApprovalStatus,
    Connection,
    EffectsState,
    Entity,
    EntityPlan,
    FieldPlan,
    FieldsChange,
    MarketoField,
)
from bot.sync.custom_objects import plan_custom_objects, reachable_tables
from bot.views import ids
from bot.views.approval import (
    approval_decided_message,
    approval_request_message,
    decision_text,
    fields_change_approved_notice,
    reject_reason_modal,
)
from tests.unit.test_custom_objects_plan import PROJECT
from tests.unit.test_views_kit import blocks_of, elements, message_dict, text_of, view_dict

CONNECTION = Connection(
    team_id="T1", requester="U1REQ", dynamics_url="https://contoso.crm4.dynamics.com",
    username="sync@contoso.com", sync_user_name="Marketo Sync", duplicate_count=42,
    duplicate_records=97,
)
APPROVAL = Approval(id="ap1", team_id="T1", connection_id=CONNECTION.id, requester="U1REQ",
                    required=2, approvers=["U2LEAD"], expires_at=1_800_000_000)


def plan(n_create: int = 2) -> FieldPlan:
    return FieldPlan(
        entities=[EntityPlan(entity=Entity.lead, mappings=[], id_field="dynamicsLeadId",
                             filter_attribute="new_synctomkto", record_count=1500),
                  EntityPlan(entity=Entity.contact, mappings=[], id_field="dynamicsContactId", record_count=900)],
        fields_to_create=[MarketoField(name=f"dynLeadF{i}", display_name=f"Dyn Lead F{i}", data_type="currency")
                          for i in range(n_create)],
    )


def test_request_has_whole_plan_and_buttons():
    data = message_dict(approval_request_message(APPROVAL, CONNECTION, plan()))
    dumped = text_of(data)
    for expected in ["https://contoso.crm4.dynamics.com", "Marketo Sync (sync@contoso.com)", "<@U1REQ>",
                     "<!date^1800000000^", "1 of 2: <@U2LEAD>", "*Leads*", "1,500 records", "900 records",
                     "filter `new_synctomkto` applied", "`dynLeadF1` (currency)",
                     "Duplicate emails in Dynamics:* 42 addresses shared by 97 records",
                     "A lead qualified into a contact stays *one Marketo person*"]:
        assert expected in dumped, expected
    approve, reject = elements(data)
    assert (approve["action_id"], approve["value"], approve["style"]) == (ids.APPROVE_ACTION, "ap1", "primary")
    assert (reject["action_id"], reject["value"], reject["style"]) == (ids.REJECT_ACTION, "ap1", "danger")
    assert "cannot be deleted" in approve["confirm"]["text"]["text"] and reject["confirm"]
    assert "contoso.crm4.dynamics.com" in data["text"]


def test_request_with_huge_plan_fits_one_message():
    data = message_dict(approval_request_message(APPROVAL, CONNECTION, plan(1000)))
    dumped = text_of(data)
    assert "Marketo fields to create (1000)" in dumped and "960 more fields" in dumped
    assert elements(data)  # the buttons survive


@pytest.mark.parametrize(("changes", "expected"), [
    ({"status": ApprovalStatus.approved, "approvers": ["U2LEAD", "U3LEAD"], "decided_by": "U3LEAD",
      "decided_at": 1_790_000_000}, "*Approved* by <@U2LEAD>, <@U3LEAD>"),
    ({"status": ApprovalStatus.rejected, "decided_by": "U3LEAD", "reason": "Wrong org <prod>",
      "decided_at": 1_790_000_000}, "*Rejected* by <@U3LEAD>"),
    ({"status": ApprovalStatus.expired}, "*Expired*"),
    ({"status": ApprovalStatus.cancelled}, "*Withdrawn* by <@U1REQ>"),
])
def test_decided_message_has_no_buttons(changes, expected):
    approval = APPROVAL.model_copy(update=changes)
    data = message_dict(approval_decided_message(approval, CONNECTION, plan()))
    dumped = text_of(data)
    assert expected in dumped and not blocks_of(data, "actions")
    assert "https://contoso.crm4.dynamics.com" in dumped
    if approval.reason:
        assert "Wrong org &lt;prod&gt;" in dumped


def test_failed_effects_show_the_cause_bounded_and_a_retry_button():
    approval = APPROVAL.model_copy(update={"status": ApprovalStatus.approved, "decided_by": "U2LEAD",
                                           "effects_state": EffectsState.failed, "effects_error": "x" * 5000})
    data = message_dict(approval_decided_message(approval, CONNECTION, plan()))
    dumped = text_of(data)
    assert "Starting the sync failed" in dumped and "has not started" in dumped
    assert "x" * 500 not in dumped and "x" * 400 in dumped
    [retry] = elements(data)
    assert (retry["action_id"], retry["value"]) == (ids.RETRY_APPROVAL_ACTION, "ap1") and retry["confirm"]
    started = approval.model_copy(update={"effects_state": EffectsState.done})
    assert not blocks_of(message_dict(approval_decided_message(started, CONNECTION, plan())), "actions")


def test_decided_without_plan():
    data = message_dict(approval_decided_message(APPROVAL.model_copy(update={"status": "expired"}), CONNECTION, None))
    assert "plan is missing" in text_of(data)


def test_reject_reason_modal():
    data = view_dict(reject_reason_modal("ap1"))
    assert data["callback_id"] == ids.REJECT_REASON_CALLBACK and data["submit"]["text"] == "Reject"
    assert json.loads(data["private_metadata"]) == {"approval_id": "ap1"}
    (reason,) = blocks_of(data, "input")
    assert reason["block_id"] == ids.REJECT_REASON_BLOCK
    assert reason["element"]["action_id"] == ids.REJECT_REASON_ACTION and reason["element"]["multiline"]


@pytest.mark.parametrize("tables", [False, True], ids=["fields-only", "custom-table-added"])
def test_an_approved_change_of_fields_mentions_custom_objects_only_when_it_makes_some(tables: bool) -> None:
    objects, _ = plan_custom_objects(reachable_tables([PROJECT]), {"new_project": ["new_name"]}, set())
    change = FieldsChange(added={"lead": ["new_budget"]}, objects_added=objects if tables else [])
    approval = APPROVAL.model_copy(update={"kind": ApprovalKind.fields_change, "fields_change": change,
                                           "status": ApprovalStatus.approved, "decided_by": "U2LEAD"})
    for text in (decision_text(approval), fields_change_approved_notice(approval).text or ""):
        assert "written into existing records" in text
        assert ("custom objects" in text and "custom tables synced in full" in text) == tables, text
