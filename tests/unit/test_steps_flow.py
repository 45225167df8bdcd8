"""Steps of the connection flow without Slack: where /connect-dynamics opens, Step 1's form,
Step 3's opening and Begin sync, over a real Redis store."""

from __future__ import annotations

import pytest

from bot import audit, flow
from bot.approvals import ApprovalService
from bot.dynamics.egress import HostAllowlist
from bot.errors import FlowError, PermissionDenied
from bot.models import Approval, FlowState
from bot.roles import Roles
from bot.steps import confirm, credentials, start, status
from bot.steps.credentials import CredentialsForm
from bot.store import Store
from bot.views import ids
from tests.support.connections import at_confirm, at_fields

ORG_ALLOWED = HostAllowlist(["org.crm.dynamics.com"])  # allowlisted: no DNS lookup in a unit test

TEAM = "T1"
ADMIN = "UADMIN"
LEAD = "ULEAD"


class NoEffects:
    def on_approved(self, approval: Approval) -> None: ...

    def on_rejected(self, approval: Approval) -> None: ...

    def on_expired(self, approval: Approval) -> None: ...

    def on_effects_failed(self, approval: Approval) -> None: ...


@pytest.fixture
def approvals(store: Store) -> ApprovalService:
    return ApprovalService(store, roles=Roles(admins={ADMIN}, leads={LEAD}), effects=NoEffects())


# -- where the flow opens ----------------------------------------------------------------------------

def test_a_new_flow_opens_step1_refilled_from_the_draft(store: Store) -> None:
    store.save_draft(TEAM, ADMIN, {"username": "sync@org.com", "url": "https://org.crm.dynamics.com"})
    opening = start.opening(store, TEAM, ADMIN)
    view = opening.view.to_dict()
    assert view["callback_id"] == ids.CREDENTIALS_CALLBACK and not opening.fields_pending
    assert "sync@org.com" in str(view["blocks"])
    assert store.active_connection(TEAM).id == opening.connection_id


def test_after_step1_the_flow_opens_on_the_field_picker(store: Store) -> None:
    connection = at_fields(store, TEAM, ADMIN)
    opening = start.opening(store, TEAM, ADMIN)
    assert opening.connection_id == connection.id and opening.fields_pending
    assert "Reading the fields" in str(opening.view.to_dict())


def test_with_a_saved_plan_the_flow_opens_on_the_plan(store: Store) -> None:
    connection = at_confirm(store, TEAM, ADMIN)
    opening = start.opening(store, TEAM, ADMIN)
    assert not opening.fields_pending
    assert opening.view.to_dict()["callback_id"] == ids.PLAN_CALLBACK and connection.id in opening.view.private_metadata


def test_no_new_flow_while_a_request_awaits_approval(store: Store, approvals: ApprovalService) -> None:
    connection = at_confirm(store, TEAM, ADMIN)
    approvals.request(TEAM, connection.id, ADMIN)
    with pytest.raises(FlowError, match="approval"):
        start.opening(store, TEAM, ADMIN)


# -- Step 1's form -----------------------------------------------------------------------------------

def test_format_errors_come_back_inline_and_nothing_is_kept(store: Store) -> None:
    checked = credentials.submit_form(store, ORG_ALLOWED, TEAM, ADMIN, CredentialsForm(username="DOMAIN\\sync", url="not a url"))
    assert set(checked.errors) == {ids.USERNAME_BLOCK, ids.URL_BLOCK}
    assert checked.credentials is None and store.load_draft(TEAM, ADMIN) == {}


def test_a_good_form_keeps_a_draft_without_secrets(store: Store) -> None:
    form = CredentialsForm(username="sync@org.com", password="pw-123", url="https://ORG.crm.dynamics.com/",
                           client_id="", client_secret="")
    checked = credentials.submit_form(store, ORG_ALLOWED, TEAM, ADMIN, form)
    assert checked.errors == {} and checked.credentials is not None
    assert checked.credentials.password.get_secret_value() == "pw-123"
    draft = store.load_draft(TEAM, ADMIN)
    assert draft["username"] == "sync@org.com" and draft["url"] == checked.credentials.url
    assert "pw-123" not in str(draft) and "pw-123" not in str(checked.view.to_dict())


def test_back_to_the_form_refills_it(store: Store) -> None:
    store.save_draft(TEAM, ADMIN, {"username": "sync@org.com"})
    view = credentials.back_to_form(store, TEAM, ADMIN, "conn-1").to_dict()
    assert view["callback_id"] == ids.CREDENTIALS_CALLBACK and "sync@org.com" in str(view["blocks"])


# -- Step 3 and Begin sync ---------------------------------------------------------------------------

def test_step3_asks_for_the_duplicate_report_until_it_is_saved(store: Store) -> None:
    connection = at_confirm(store, TEAM, ADMIN)
    assert confirm.open_step3(store, TEAM, connection.id).report_pending
    flow.save_plan(store, TEAM, connection.id, ADMIN, connection.plan, duplicate_count=0, duplicate_examples=[])
    step3 = confirm.open_step3(store, TEAM, connection.id)
    assert not step3.report_pending and step3.view.to_dict()["callback_id"] == ids.ENABLE_SYNC_CALLBACK


def test_step3_of_a_vanished_connection_is_refused_in_words(store: Store) -> None:
    with pytest.raises(FlowError, match="no longer exists"):
        confirm.open_step3(store, TEAM, "no-such-connection")


def test_a_bad_notice_address_is_an_inline_error_and_asks_nobody(store: Store, approvals: ApprovalService) -> None:
    connection = at_confirm(store, TEAM, ADMIN)
    requested = confirm.begin_sync(store, approvals, None, TEAM, ADMIN, connection.id, "not-an-address")
    assert set(requested.errors) == {ids.NOTIFY_EMAIL_BLOCK} and requested.approval is None
    assert store.get_connection(TEAM, connection.id).state == FlowState.confirm


def test_begin_sync_asks_for_approval_and_says_where(store: Store, approvals: ApprovalService) -> None:
    connection = at_confirm(store, TEAM, ADMIN)
    requested = confirm.begin_sync(store, approvals, "C0APPROVE", TEAM, ADMIN, connection.id, "ops@example.com")
    assert requested.errors == {} and requested.approval is not None
    assert "<#C0APPROVE>" in str(requested.view.to_dict()) and "1 approval needed" in str(requested.view.to_dict())
    stored = store.get_connection(TEAM, connection.id)
    assert stored.state == FlowState.awaiting_approval and stored.notify_email == "ops@example.com"


def test_begin_sync_by_a_non_admin_is_refused(store: Store, approvals: ApprovalService) -> None:
    connection = at_confirm(store, TEAM, ADMIN)
    with pytest.raises(PermissionDenied):
        confirm.begin_sync(store, approvals, None, TEAM, LEAD, connection.id, "ops@example.com")


# -- status ------------------------------------------------------------------------------------------

def test_status_and_audit_answers(store: Store) -> None:
    assert "not connected yet" in str(status.status(store, TEAM).to_dict()).lower()
    at_fields(store, TEAM, ADMIN)
    log = status.audit_log(audit.AuditLog(store), TEAM).to_dict()
    assert log["text"] == "Recent audit log" and "credentials verified" in str(log["blocks"])


def test_an_unknown_subcommand_is_named_briefly_with_the_help() -> None:
    text = status.unknown_subcommand("x" * 100)
    assert text.startswith(f"I don't know `{'x' * 40}`.") and "/connect-dynamics" in text
