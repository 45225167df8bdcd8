"""Rules of the Dataverse write side that need no server: error typing, required columns, webhook bodies."""

from __future__ import annotations

import pytest

from bot.dynamics import errors
from bot.dynamics.webhooks import DataverseNotification, key_matches
from bot.dynamics.writes import check_required, validation_error

BODY = {
    "MessageName": "Update", "PrimaryEntityName": "lead", "PrimaryEntityId": "6d81", "UserId": "75C2",
    "InitiatingUserId": "75C2", "CorrelationId": "b374",
    "InputParameters": [{"key": "Target", "value": {
        "__type": "Entity:http://schemas.microsoft.com/xrm/2011/Contracts", "LogicalName": "lead", "Id": "6d81",
        "Attributes": [{"key": "firstname", "value": "James"}, {"key": "modifiedby", "value": {
            "__type": "EntityReference:http://schemas.microsoft.com/xrm/2011/Contracts", "Id": "75c2",
            "LogicalName": "systemuser"}}]}}],
}


def test_a_notification_gives_the_changed_columns_and_who_made_them() -> None:
    note = DataverseNotification.model_validate(BODY)
    assert note.target_attributes == {"firstname": "James", "modifiedby": "75c2"}
    assert note.made_by("75c2") and not note.made_by("0000")


def test_a_body_over_256_kb_has_no_parameters_and_still_parses() -> None:
    trimmed = {k: v for k, v in BODY.items() if k != "InputParameters"}
    assert DataverseNotification.model_validate(trimmed).target_attributes == {}


def test_the_key_must_match_exactly() -> None:
    assert key_matches({"x-api-key": "k1"}, "k1")
    assert not key_matches({"x-api-key": "k2"}, "k1")
    assert not key_matches({}, "k1")
    assert not key_matches({"x-api-key": ""}, "")  # no key configured never matches


@pytest.mark.parametrize(("message", "error", "attribute"), [
    ("Invalid property 'new_x' was found in entity 'Microsoft.Dynamics.CRM.lead'.", errors.UnknownAttribute, "new_x"),
    ("A validation error occurred. The length of the 'lastname' attribute of the 'lead' entity exceeded the "
     "maximum allowed length of '50'.", errors.InvalidValue, "lastname"),
    ("The attribute 'ownerid' of the 'lead' entity is SystemRequired and cannot be set to null.",
     errors.RequiredAttributeMissing, "ownerid"),
    ("Something else entirely.", errors.InvalidValue, None),
])
def test_a_refused_write_becomes_a_typed_error_naming_the_column(message: str, error: type,
                                                                   attribute: str | None) -> None:
    sent = {"new_x": 1, "lastname": "x", "ownerid@odata.bind": None}
    typed = validation_error("lead", sent, errors.DataverseBadRequest(400, "0x80040203", message))
    assert type(typed) is error and typed.attribute == attribute
    assert typed.message == message and typed.status == 400


def test_other_errors_pass_through_untouched() -> None:
    throttled = errors.DataverseThrottled(429, "0x80072322", "slow down")
    assert validation_error("lead", {}, throttled) is throttled


def test_check_required_names_every_missing_column() -> None:
    with pytest.raises(errors.RequiredAttributeMissing) as missing:
        check_required("lead", {"lastname": "", "ownerid@odata.bind": "/systemusers(1)"},
                       ["lastname", "subject", "ownerid"])
    assert missing.value.missing == ["lastname", "subject"]
    assert "'lastname, subject'" in missing.value.user_message
