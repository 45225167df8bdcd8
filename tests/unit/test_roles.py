"""Roles: who is an admin, who is a lead, and the plain refusals."""

from __future__ import annotations

import pytest

from bot.config import Settings
from bot.errors import PermissionDenied
from bot.roles import ADMIN_ONLY, ANYONE, CONNECT, CONTROL, DECIDE, LEAD_ONLY, READ_AUDIT, Roles


def test_from_settings_reads_comma_separated_ids() -> None:
    roles = Roles.from_settings(Settings(ADMIN_USER_IDS="UADMIN, UBOTH", TEAM_LEAD_USER_IDS="ULEAD,UBOTH"))
    assert roles.admins == {"UADMIN", "UBOTH"}
    assert roles.leads == {"ULEAD", "UBOTH"}


def test_one_person_can_hold_both_roles() -> None:
    roles = Roles(admins={"UBOTH"}, leads={"UBOTH"})
    roles.require_admin("UBOTH")
    roles.require_lead("UBOTH")
    assert roles.is_admin("UBOTH") and roles.is_lead("UBOTH")


def test_require_admin_refuses_a_lead_with_a_plain_message() -> None:
    roles = Roles(admins={"UADMIN"}, leads={"ULEAD"})
    with pytest.raises(PermissionDenied) as raised:
        roles.require_admin("ULEAD")
    assert raised.value.user_message == ADMIN_ONLY
    assert "ADMIN_USER_IDS" in ADMIN_ONLY and "/connect-dynamics" in ADMIN_ONLY


def test_require_lead_refuses_an_admin_with_a_plain_message() -> None:
    roles = Roles(admins={"UADMIN"}, leads={"ULEAD"})
    with pytest.raises(PermissionDenied) as raised:
        roles.require_lead("UADMIN")
    assert raised.value.user_message == LEAD_ONLY == "Only team leads can approve or reject a sync request."


def test_empty_settings_grant_nobody_anything() -> None:
    roles = Roles.from_settings(Settings(ADMIN_USER_IDS="", TEAM_LEAD_USER_IDS=""))
    assert not roles.is_admin("U1") and not roles.is_lead("U1")


def test_check_enforces_a_permission_and_refuses_with_its_own_words() -> None:
    roles = Roles(admins={"UADMIN"}, leads={"ULEAD"})
    roles.check("UNOBODY", ANYONE)
    roles.check("UADMIN", READ_AUDIT)
    roles.check("ULEAD", DECIDE)
    for user, permission in (("ULEAD", READ_AUDIT), ("ULEAD", CONTROL), ("UADMIN", DECIDE), ("ULEAD", CONNECT)):
        with pytest.raises(PermissionDenied) as raised:
            roles.check(user, permission)
        assert raised.value.user_message == permission.refusal


def test_each_refusal_says_what_was_refused() -> None:
    assert "audit log" in READ_AUDIT.refusal and "connect Dynamics" not in READ_AUDIT.refusal
    assert "cancel or resume" in CONTROL.refusal and "admin" in CONTROL.refusal
    assert CONNECT.refusal == ADMIN_ONLY and DECIDE.refusal == LEAD_ONLY
