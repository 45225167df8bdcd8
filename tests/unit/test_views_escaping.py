"""Every view and message escapes the outside text it shows (user input, Dynamics and Marketo text).

Each builder gets EVIL in every outside text it shows; no mrkdwn text of the result (nor a message's
notification text, which Slack formats too) may carry a control sequence from it, and the escaped
form must be there, so the text was shown rather than dropped. plain_text is not formatted by Slack.
"""

from __future__ import annotations

from typing import Any

import pytest

from bot.models import (
    Approval,
    ApprovalStatus,
    AuditEntry,
    CheckResult,
    Connection,
    Entity,
    EntityPlan,
    EntityProgress,
    FieldPlan,
    FlowState,
    MarketoField,
    RunStatus,
    SyncRun,
)
from bot.sync.mapping import SyncFilterStatus
from bot.views.approval import (
    approval_decided_message,
    approval_request_message,
    approved_notice,
    expired_notice,
    rejected_notice,
)
from bot.views.common import audit_blocks, error_modal, home_view, status_blocks
from bot.views.fields import EntityFieldsView, fields_modal, plan_modal
from bot.views.kit import Message, escape
from bot.views.progress import paused_message, progress_message, summary_message
from bot.views.step1 import checking_modal, checklist_modal, credentials_modal
from bot.views.step3 import DuplicateSummary, enable_sync_modal

EVIL = "<!channel> <https://evil|x> & <@U1>"
ESCAPED = escape(EVIL)
RAW = ("<!channel>", "<https://evil", "<@U1>", "& <")


def mrkdwn_texts(node: Any) -> list[str]:
    """Every text Slack formats: mrkdwn text objects (and a message's top-level `text`)."""
    if isinstance(node, list):
        return [t for item in node for t in mrkdwn_texts(item)]
    if not isinstance(node, dict):
        return []
    found = [node["text"]] if node.get("type") == "mrkdwn" and isinstance(node.get("text"), str) else []
    return found + [t for key, value in node.items() if key != "text" or isinstance(value, (dict, list))
                    for t in mrkdwn_texts(value)]


def assert_escaped(built: Any, shown: int = 1) -> None:
    data = built.to_dict() if not isinstance(built, list) else [b.to_dict() for b in built]
    texts = mrkdwn_texts(data)
    if isinstance(built, Message):
        texts.append(data["text"])
    leaks = [t for t in texts if any(raw in t for raw in RAW)]
    assert leaks == [], leaks
    assert sum(t.count(ESCAPED) for t in texts) >= shown, texts


CONNECTION = Connection(team_id="T1", requester="U1REQ", state=FlowState.syncing, dynamics_url=EVIL,
                        username=EVIL, sync_user_name=EVIL, duplicate_count=1, duplicate_examples=[(EVIL, 2)])
PLAN = FieldPlan(
    entities=[EntityPlan(entity=Entity.lead, mappings=[], id_field="dynamicsLeadId", filter_attribute=EVIL,
                         record_count=10)],
    fields_to_create=[MarketoField(name=EVIL, display_name=EVIL, data_type=EVIL)],
    fields_existing=[EVIL],
)
APPROVAL = Approval(team_id="T1", connection_id=CONNECTION.id, requester="U1REQ", decided_by="U2LEAD",
                    reason=EVIL, expires_at=1_800_000_000)
RUN = SyncRun(team_id="T1", connection_id=CONNECTION.id, requester="U1REQ", status=RunStatus.paused,
              message=EVIL, entities=[EntityProgress(entity=Entity.lead, estimated=10)])


@pytest.mark.parametrize("status", list(ApprovalStatus))
def test_approval_messages(status: ApprovalStatus) -> None:
    approval = APPROVAL.model_copy(update={"status": status})
    assert_escaped(approval_request_message(approval, CONNECTION, PLAN), shown=8)
    assert_escaped(approval_decided_message(approval, CONNECTION, PLAN), shown=8)


def test_the_requester_notices() -> None:
    assert_escaped(rejected_notice(APPROVAL.model_copy(update={"status": ApprovalStatus.rejected})))
    for notice in (approved_notice(APPROVAL), expired_notice(APPROVAL)):
        assert_escaped(notice, shown=0)


def test_run_messages() -> None:
    assert_escaped(paused_message(RUN), shown=2)
    assert_escaped(summary_message(RUN.model_copy(update={"status": RunStatus.failed})))
    assert_escaped(progress_message(RUN), shown=0)


def test_common_views() -> None:
    assert_escaped(error_modal(EVIL))
    assert_escaped(status_blocks(CONNECTION, RUN), shown=3)
    assert_escaped(home_view(CONNECTION, RUN), shown=3)
    assert_escaped(audit_blocks([AuditEntry(actor=EVIL, action=EVIL, detail=EVIL)]), shown=3)


def test_step1_views() -> None:
    assert_escaped(credentials_modal({"username": EVIL, "url": EVIL}, {"username": EVIL, EVIL: EVIL},
                                     message=EVIL), shown=4)
    assert_escaped(checking_modal(EVIL))
    assert_escaped(checklist_modal([CheckResult(name=EVIL, ok=False, detail=EVIL, fix=EVIL)], False, "c1"), shown=3)


def test_step2_and_step3_views() -> None:
    view = EntityFieldsView(entity=Entity.lead, selected=[], attribute_count=3,
                            filter_status=SyncFilterStatus(applies=False, message=EVIL))
    assert_escaped(fields_modal("c1", [view]))
    assert_escaped(plan_modal("c1", PLAN), shown=5)
    summary = DuplicateSummary.from_connection(CONNECTION)
    assert_escaped(enable_sync_modal("c1", summary, None))
