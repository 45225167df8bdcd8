import json

from bot.models import CheckResult
from bot.views import ids
from bot.views.step1 import checking_modal, checklist_modal, credentials_modal
from tests.unit.test_views_kit import blocks_of, elements, text_of, view_dict

PASSWORD = "Pa55-w0rd-SECRET"
CLIENT_SECRET = "cl13nt~S3CR3T~value"
DRAFT = {
    "username": "sync@contoso.com",
    "password": PASSWORD,
    "url": "https://contoso.crm.dynamics.com",
    "client_id": "11111111-2222-3333-4444-555555555555",
    "client_secret": CLIENT_SECRET,
}


def inputs(data: dict) -> dict[str, dict]:
    return {b["block_id"]: b for b in blocks_of(data, "input")}


def test_credentials_form_fields_and_hints():
    data = view_dict(credentials_modal())
    assert data["callback_id"] == ids.CREDENTIALS_CALLBACK and data["submit"]["text"]
    by_block = inputs(data)
    assert list(by_block) == [ids.USERNAME_BLOCK, ids.PASSWORD_BLOCK, ids.URL_BLOCK, ids.CLIENT_ID_BLOCK,
                              ids.CLIENT_SECRET_BLOCK]
    assert all(b["element"]["type"] == "plain_text_input" for b in by_block.values())
    assert by_block[ids.USERNAME_BLOCK]["element"]["action_id"] == ids.USERNAME_ACTION
    assert "not DOMAIN\\user" in by_block[ids.USERNAME_BLOCK]["hint"]["text"]
    assert by_block[ids.CLIENT_ID_BLOCK]["optional"] and by_block[ids.CLIENT_SECRET_BLOCK]["optional"]
    assert not by_block[ids.PASSWORD_BLOCK].get("optional")


def test_refill_keeps_everything_but_secrets():
    data = view_dict(credentials_modal(DRAFT, connection_id="c42"))
    by_block = inputs(data)
    assert by_block[ids.USERNAME_BLOCK]["element"]["initial_value"] == DRAFT["username"]
    assert by_block[ids.URL_BLOCK]["element"]["initial_value"] == DRAFT["url"]
    assert by_block[ids.CLIENT_ID_BLOCK]["element"]["initial_value"] == DRAFT["client_id"]
    assert "initial_value" not in by_block[ids.PASSWORD_BLOCK]["element"]
    assert "initial_value" not in by_block[ids.CLIENT_SECRET_BLOCK]["element"]
    assert json.loads(data["private_metadata"]) == {"connection_id": "c42"}
    dumped = text_of(data)
    assert PASSWORD not in dumped and CLIENT_SECRET not in dumped


def test_errors_and_message_shown_without_secrets():
    data = view_dict(credentials_modal(
        DRAFT, {"username": "Use user@domain.com, not CONTOSO\\sync", ids.URL_BLOCK: "Not an https URL"},
        message="Wrong password for sync@contoso.com <try again>",
    ))
    dumped = text_of(data)
    assert "*Username:* Use user@domain.com" in dumped and "*Dynamics URL:* Not an https URL" in dumped
    assert "&lt;try again&gt;" in dumped
    assert PASSWORD not in dumped and CLIENT_SECRET not in dumped


def test_checking_modal():
    data = view_dict(checking_modal("https://contoso.crm.dynamics.com"))
    assert "contoso.crm.dynamics.com" in text_of(data) and "submit" not in data


CHECKS = [
    CheckResult(name="Dynamics URL reachable", ok=True, detail="Dataverse org found"),
    CheckResult(name="Credentials valid", ok=False, detail="AADSTS50076: MFA required",
                fix="Turn off MFA for the sync user"),
]


def test_checklist_failure_has_back_button_and_no_submit():
    data = view_dict(checklist_modal(CHECKS, ok=False, connection_id="c42"))
    assert "submit" not in data
    dumped = text_of(data)
    assert ":white_check_mark: *Dynamics URL reachable* — Dataverse org found" in dumped
    assert ":x: *Credentials valid* — AADSTS50076" in dumped and "Turn off MFA for the sync user" in dumped
    (back,) = elements(data)
    assert back["action_id"] == ids.BACK_TO_FORM_ACTION and back["value"] == "c42"


def test_checklist_success_continues():
    ok_checks = [c.model_copy(update={"ok": True}) for c in CHECKS]
    data = view_dict(checklist_modal(ok_checks, ok=True, connection_id="c42"))
    assert data["submit"]["text"] == "Continue" and data["callback_id"] == ids.CHECKLIST_CALLBACK
    assert not elements(data) and "Turn off MFA" not in text_of(data)  # fixes only on failed lines
    assert json.loads(data["private_metadata"]) == {"connection_id": "c42"}
