"""Sign-in error mapping and the msal port fix (no network)."""

from __future__ import annotations

import pytest

from bot.bounded_text import MAX_EXTERNAL_TEXT
from bot.config import Settings
from bot.dynamics import errors
from bot.dynamics.auth import Flow, PortRestoringSession, choose_flow, tenant_for
from bot.errors import BotError
from bot.models import Credentials

CODES = [50126, 50034, 50053, 50055, 50057, 50076, 50079, 7000215, 7000222, 7000218, 700016, 90002, 65001, 50158, 53003]


def test_each_aadsts_code_has_its_own_plain_message() -> None:
    made = {code: errors.sign_in_error("invalid_grant", code) for code in CODES}
    for code, error in made.items():
        assert isinstance(error, errors.SignInError) and isinstance(error, BotError)
        assert error.aadsts == code and f"AADSTS{code}" in error.user_message
        assert error.fix and error.fix in error.user_message
    distinct = {code: error.problem for code, error in made.items() if code not in {50158, 53003}}
    assert len(set(distinct.values())) == len(distinct)
    assert isinstance(made[50076], errors.MfaRequired) and "MFA" in made[50076].fix
    unknown = errors.sign_in_error("invalid_grant", 12345)
    assert type(unknown) is errors.SignInError and "AADSTS12345" in unknown.user_message


def test_dataverse_errors_carry_status_and_code() -> None:
    error = errors.DataverseAccessDenied(403, "0x80040220", "Principal user is missing prvReadLead")
    assert error.status == 403 and error.code == "0x80040220"
    assert isinstance(error, errors.DataverseError) and error.fix
    assert "cannot reach https://x.example" in errors.DynamicsUnreachable("https://x.example").user_message.lower()
    assert "CA_BUNDLE" in errors.DynamicsUnreachable("https://x", "SSL: CERTIFICATE_VERIFY_FAILED").fix


def test_port_is_restored_only_on_the_authority_host() -> None:
    session = PortRestoringSession("login.example:8443", verify="/ca.pem", timeout=5)
    assert session.restore_port("https://login.example/common/userrealm/a@b.com?api-version=1.0") == (
        "https://login.example:8443/common/userrealm/a@b.com?api-version=1.0")
    assert session.restore_port("https://LOGIN.example/x") == "https://LOGIN.example:8443/x"
    assert session.restore_port("https://login.example:9000/x") == "https://login.example:9000/x"
    assert session.restore_port("https://other.example/x") == "https://other.example/x"
    plain = PortRestoringSession("login.microsoftonline.com", verify="/ca.pem", timeout=5)
    assert plain.restore_port("https://login.microsoftonline.com/common/userrealm/u") == (
        "https://login.microsoftonline.com/common/userrealm/u")


def test_flow_and_tenant_choice() -> None:
    base = {"username": "Sync@Contoso.com", "url": "https://org.crm.dynamics.com"}
    assert choose_flow(Credentials(**base, password="p")) is Flow.public_ropc
    assert choose_flow(Credentials(**base, password="p", client_id="c", client_secret="s")) is Flow.confidential_ropc
    assert choose_flow(Credentials(**base, client_id="c", client_secret="s")) is Flow.client_credentials
    assert tenant_for(Credentials(**base), Settings()) == "contoso.com"
    assert tenant_for(Credentials(**base), Settings(ENTRA_TENANT="tid")) == "tid"
    with pytest.raises(errors.UsernameFormatError):
        tenant_for(Credentials(username="CONTOSO\\sync", url="https://x"), Settings())


def test_outside_text_in_dynamics_errors_is_bounded() -> None:
    huge = "y" * 1_000_000
    made = [errors.DataverseBadRequest(400, huge, huge), errors.DynamicsUnreachable("https://" + huge, huge),
            errors.NotDataverse("https://" + huge, huge), errors.sign_in_error("invalid_grant", 50126, detail=huge)]
    for error in made:
        assert len(error.user_message) < 3 * MAX_EXTERNAL_TEXT and len(str(error)) <= MAX_EXTERNAL_TEXT
    assert len(made[0].message) <= MAX_EXTERNAL_TEXT and len(made[0].code) <= MAX_EXTERNAL_TEXT
