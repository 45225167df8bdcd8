"""Entra ID sign-in over real HTTPS against the emulator: every flow, every failure, refresh."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from bot.config import Settings
from bot.dynamics import errors
from bot.dynamics.auth import EntraTokenProvider, Flow, sign_in
from bot.dynamics.client import DataverseClient
from bot.dynamics.egress import HostAllowlist
from bot.models import Credentials
from sandbox.dynamics import DynamicsEmulator, EmulatedApp, EmulatedUser
from sandbox.server import free_port

LOCALHOST = HostAllowlist(["localhost"])
APP_ID = "0a1b2c3d-1234-5678-9abc-def012345678"
STRICT_APP_ID = "11111111-2222-3333-4444-555555555555"
USERS = [
    EmulatedUser(username="sync@contoso.com"),
    EmulatedUser(username="locked@contoso.com", locked=True),
    EmulatedUser(username="expired@contoso.com", password_expired=True),
    EmulatedUser(username="disabled@contoso.com", disabled=True),
    EmulatedUser(username="mfa@contoso.com", mfa=True),
    EmulatedUser(username="enroll@contoso.com", mfa_registration=True),
    EmulatedUser(username="blocked@contoso.com", blocked_by_ca=True),
]
APPS = [
    EmulatedApp(client_id=APP_ID, secret="app-secret", app_user_email="app@contoso.com"),
    EmulatedApp(client_id=STRICT_APP_ID, secret="old-secret", secret_expired=True),
    EmulatedApp(client_id="22222222-2222-3333-4444-555555555555", secret="s", consented=False),
]


@pytest.fixture
def emulator(start_dynamics: Callable[..., DynamicsEmulator]) -> DynamicsEmulator:
    return start_dynamics(users=USERS, apps=APPS)


@pytest.fixture
def settings(emulator: DynamicsEmulator) -> Settings:
    return Settings(ENTRA_AUTHORITY_HOST=emulator.authority_host, CA_BUNDLE=emulator.ca_path)


def creds(em: DynamicsEmulator, username: str = "sync@contoso.com", password: str = "Passw0rd!",
          client_id: str | None = None, secret: str | None = None) -> Credentials:
    return Credentials(username=username, password=password, url=em.url, client_id=client_id, client_secret=secret)


@pytest.mark.parametrize(
    ("username", "password", "client_id", "secret", "expected"),
    [
        ("sync@contoso.com", "wrong", None, None, errors.WrongPassword),
        ("nobody@contoso.com", "Passw0rd!", None, None, errors.UnknownUser),
        ("locked@contoso.com", "Passw0rd!", None, None, errors.AccountLocked),
        ("expired@contoso.com", "Passw0rd!", None, None, errors.PasswordExpired),
        ("disabled@contoso.com", "Passw0rd!", None, None, errors.AccountDisabled),
        ("mfa@contoso.com", "Passw0rd!", None, None, errors.MfaRequired),
        ("enroll@contoso.com", "Passw0rd!", None, None, errors.MfaRegistrationRequired),
        ("blocked@contoso.com", "Passw0rd!", None, None, errors.ConditionalAccessBlocked),
        ("sync@contoso.com", "Passw0rd!", APP_ID, "not-the-secret", errors.BadClientSecret),
        ("sync@contoso.com", "Passw0rd!", STRICT_APP_ID, "old-secret", errors.ClientSecretExpired),
        ("sync@contoso.com", "Passw0rd!", "99999999-2222-3333-4444-555555555555", "s", errors.UnknownApp),
        ("sync@contoso.com", "Passw0rd!", "22222222-2222-3333-4444-555555555555", "s", errors.ConsentRequired),
        ("sync@fabrikam.com", "Passw0rd!", None, None, errors.UnknownTenant),
    ],
)
def test_each_sign_in_failure_has_its_own_error(
    emulator: DynamicsEmulator, settings: Settings, username: str, password: str, client_id: str | None,
    secret: str | None, expected: type[errors.SignInError],
) -> None:
    with pytest.raises(expected) as caught:
        sign_in(creds(emulator, username, password, client_id, secret), settings)
    error = caught.value
    assert type(error) is expected
    assert error.fix and error.fix in error.user_message
    for secret_text in ("Passw0rd!", "not-the-secret", "old-secret"):
        assert secret_text not in str(error) and secret_text not in error.user_message


def test_public_client_without_public_flows_needs_a_secret(emulator: DynamicsEmulator, settings: Settings) -> None:
    credentials = creds(emulator).model_copy(update={"client_id": APP_ID})  # an id but no secret: public ROPC
    with pytest.raises(errors.ClientSecretRequired):
        sign_in(credentials, settings)


def test_domain_user_never_reaches_entra(emulator: DynamicsEmulator, settings: Settings) -> None:
    with pytest.raises(errors.UsernameFormatError) as caught:
        sign_in(creds(emulator, username="CONTOSO\\sync"), settings)
    assert "user@domain.com" in caught.value.user_message
    assert emulator.token_requests == 0


@pytest.mark.parametrize(
    ("username", "password", "client_id", "secret", "flow", "who"),
    [
        ("sync@contoso.com", "Passw0rd!", None, None, Flow.public_ropc, "sync@contoso.com"),
        ("sync@contoso.com", "Passw0rd!", APP_ID, "app-secret", Flow.confidential_ropc, "sync@contoso.com"),
        ("app@contoso.com", "", APP_ID, "app-secret", Flow.client_credentials, "app@contoso.com"),
    ],
)
def test_each_flow_signs_in_as_the_right_principal(
    emulator: DynamicsEmulator, settings: Settings, username: str, password: str, client_id: str | None,
    secret: str | None, flow: Flow, who: str,
) -> None:
    provider = sign_in(creds(emulator, username, password, client_id, secret), settings)
    assert provider.flow is flow
    assert provider.scopes[0].endswith("/user_impersonation" if flow is Flow.public_ropc else "/.default")
    with DataverseClient(emulator.url, provider, ca_bundle=emulator.ca_path, host_allowlist=LOCALHOST) as client:
        user = client.get_user(client.whoami().user_id)
    assert user.domainname == who
    assert (user.applicationid == APP_ID) is (flow is Flow.client_credentials)


def test_token_is_cached_then_refreshed_before_expiry(emulator: DynamicsEmulator, settings: Settings) -> None:
    now = [1_000_000.0]
    provider = EntraTokenProvider(creds(emulator), settings, clock=lambda: now[0])
    first = provider.token()
    assert provider.token() == first and emulator.tokens_issued == 1
    now[0] += 3600 - 301  # 301 s left: still fresh
    assert provider.token() == first and emulator.tokens_issued == 1
    now[0] += 2  # 299 s left: inside the 300 s refresh margin  # less than the 300 s refresh margin left of the 3600 s lifetime
    second = provider.token()
    assert second != first and emulator.tokens_issued == 2


@pytest.mark.parametrize("confidential", [False, True])
def test_a_401_drops_the_token_and_signs_in_again(
    emulator: DynamicsEmulator, settings: Settings, confidential: bool
) -> None:
    credentials = creds(emulator, "app@contoso.com", "", APP_ID, "app-secret") if confidential else creds(emulator)
    provider = sign_in(credentials, settings)
    with DataverseClient(emulator.url, provider, ca_bundle=emulator.ca_path, host_allowlist=LOCALHOST) as client:
        before = client.whoami()
        emulator.expire_tokens()
        assert client.whoami() == before
    assert provider.acquisitions == 2 and emulator.tokens_issued == 2


def test_unreachable_sign_in_service(emulator: DynamicsEmulator) -> None:
    settings = Settings(ENTRA_AUTHORITY_HOST=f"127.0.0.1:{free_port()}", CA_BUNDLE=emulator.ca_path)
    with pytest.raises(errors.SignInUnreachable):
        sign_in(creds(emulator), settings)
