"""Every view and message escapes the outside text it shows (user input, Dynamics and Marketo text).

Each builder gets EVIL in every outside text it shows; no mrkdwn text of the result (nor a message's
notification text, which Slack formats too) may carry a control sequence from it, and the escaped
form must be there, so the text was shown rather than dropped. plain_text is not formatted by Slack.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from bot.models import (
    Approval,
    ApprovalStatus,
    AuditEntry,
    CheckResult,
    Connection,
    EffectsState,
    Entity,
    EntityPlan,
    EntityProgress,
    FieldPlan,
    FlowState,
    MarketoField,
    RunStatus,
    SyncRun,
)
from bot.store import EntityFigures, OngoingFigures, OngoingSwitch
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
from bot.views.renew import Asked, renew_credentials_modal, renewed_modal
from bot.views.status import ongoing_blocks, unchanged_message
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


FIELDS_VIEW = EntityFieldsView(entity=Entity.lead, selected=[], attribute_count=3,
                               filter_status=SyncFilterStatus(applies=False, message=EVIL))
REJECTED = APPROVAL.model_copy(update={"status": ApprovalStatus.rejected})

# (builder, how many times EVIL shows escaped at least): one case per message or view builder
BUILT: dict[str, tuple[Callable[[], Any], int]] = {
    **{f"approval_request_message[{status.value}]": (
        lambda status=status: approval_request_message(APPROVAL.model_copy(update={"status": status}), CONNECTION,
                                                       PLAN), 8) for status in ApprovalStatus},
    **{f"approval_decided_message[{status.value}]": (
        lambda status=status: approval_decided_message(APPROVAL.model_copy(update={"status": status}), CONNECTION,
                                                       PLAN), 8) for status in ApprovalStatus},
    "approval_decided_message[effects failed]": (lambda: approval_decided_message(APPROVAL.model_copy(update={
        "status": ApprovalStatus.approved, "effects_state": EffectsState.failed, "effects_error": EVIL}),
        CONNECTION, PLAN), 9),
    "renew_credentials_modal": (lambda: renew_credentials_modal(
        CONNECTION, Asked(unknown=True), message=EVIL, checks=[CheckResult(name=EVIL, ok=False, detail=EVIL)]), 4),
    "renewed_modal": (lambda: renewed_modal([EVIL]), 1),
    "rejected_notice": (lambda: rejected_notice(REJECTED), 1),
    "approved_notice": (lambda: approved_notice(APPROVAL), 0),
    "expired_notice": (lambda: expired_notice(APPROVAL), 0),
    "paused_message": (lambda: paused_message(RUN), 2),
    "summary_message": (lambda: summary_message(RUN.model_copy(update={"status": RunStatus.failed})), 1),
    "progress_message": (lambda: progress_message(RUN), 0),
    "error_modal": (lambda: error_modal(EVIL), 1),
    "status_blocks": (lambda: status_blocks(CONNECTION, RUN), 3),
    "home_view": (lambda: home_view(CONNECTION, RUN), 3),
    "audit_blocks": (lambda: audit_blocks([AuditEntry(actor=EVIL, action=EVIL, detail=EVIL)]), 3),
    "credentials_modal": (lambda: credentials_modal({"username": EVIL, "url": EVIL},
                                                    {"username": EVIL, EVIL: EVIL}, message=EVIL), 4),
    "checking_modal": (lambda: checking_modal(EVIL), 1),
    "checklist_modal": (lambda: checklist_modal([CheckResult(name=EVIL, ok=False, detail=EVIL, fix=EVIL)], False,
                                                "c1"), 3),
    "fields_modal": (lambda: fields_modal("c1", [FIELDS_VIEW]), 1),
    "plan_modal": (lambda: plan_modal("c1", PLAN), 5),
    "enable_sync_modal": (lambda: enable_sync_modal("c1", DuplicateSummary.from_connection(CONNECTION), None), 1),
    "ongoing_blocks": (lambda: ongoing_blocks(OngoingFigures(switch=OngoingSwitch(enabled=False, by=EVIL, at=1000),
                                                             entities=[EntityFigures(entity=EVIL)]), now=2000), 2),
    "unchanged_message": (lambda: unchanged_message(OngoingSwitch(enabled=True, by=EVIL, at=1000)), 1),
}


@pytest.mark.parametrize("name", list(BUILT))
def test_outside_text_is_escaped(name: str) -> None:
    build, shown = BUILT[name]
    assert_escaped(build(), shown)
