"""The pre-flight checklist against the emulator: each line fails for its own reason, later lines
that cannot run are shown as not checked, and nothing raises."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme
from starlette.applications import Starlette
from starlette.responses import HTMLResponse
from starlette.routing import Route

from bot.config import Settings
from bot.dynamics.preflight import CHECK_NAMES, run_preflight
from bot.models import Credentials
from sandbox.dynamics import DynamicsEmulator, EmulatedApp, EmulatedUser
from sandbox.server import ServerThread, free_port

APP_ID = "0a1b2c3d-1234-5678-9abc-def012345678"


@pytest.fixture
def emulator(request: pytest.FixtureRequest, start_dynamics: Callable[..., DynamicsEmulator]) -> DynamicsEmulator:
    return start_dynamics(**getattr(request, "param", {}))


def settings_for(em: DynamicsEmulator, **extra: Any) -> Settings:
    return Settings(ENTRA_AUTHORITY_HOST=em.authority_host, CA_BUNDLE=em.ca_path, DYNAMICS_HOST_ALLOWLIST="localhost",
                    **extra)


def creds(em: DynamicsEmulator, username: str = "sync@contoso.com", password: str = "Passw0rd!", **extra: Any) -> Credentials:
    return Credentials(username=username, password=password, url=em.url, **extra)


def failed(result: Any) -> list[str]:
    return [c.name for c in result.checks if not c.ok]


def test_all_lines_pass_for_a_proper_sync_user(emulator: DynamicsEmulator) -> None:
    result = run_preflight(creds(emulator), settings_for(emulator))
    assert [c.name for c in result.checks] == list(CHECK_NAMES)
    assert result.ok and failed(result) == []
    assert result.sync_user_name == "Marketo Sync" and result.sync_user_id
    assert result.token_provider is not None and result.token_provider.token()


@pytest.mark.parametrize("emulator", [{"users": [EmulatedUser(username="sync@contoso.com", roles=["Salesperson"])]}],
                         indirect=True)
def test_missing_role_fails_that_line_only(emulator: DynamicsEmulator) -> None:
    result = run_preflight(creds(emulator), settings_for(emulator))
    assert not result.ok and failed(result) == ["Sync user has the Marketo Sync User role"]
    line = next(c for c in result.checks if not c.ok)
    assert "Marketo Sync User" in line.detail and "Manage Roles" in line.fix


@pytest.mark.parametrize(
    ("emulator", "failing"),
    [
        ({"solution_installed": False}, "Marketo solution installed"),
        ({"users": [EmulatedUser(username="sync@contoso.com", crm_disabled=True)]}, "Sync user is enabled"),
        ({"users": [EmulatedUser(username="sync@contoso.com", domainname="old-sync@contoso.com")]},
         "Username matches the sync user"),
    ],
    indirect=["emulator"],
)
def test_other_single_line_failures(emulator: DynamicsEmulator, failing: str) -> None:
    result = run_preflight(creds(emulator), settings_for(emulator))
    assert failed(result) == [failing]
    assert next(c for c in result.checks if not c.ok).fix


@pytest.mark.parametrize("emulator", [{"users": [EmulatedUser(username="sync@contoso.com", mfa=True)]}], indirect=True)
def test_mfa_is_explained_and_later_lines_are_not_checked(emulator: DynamicsEmulator) -> None:
    result = run_preflight(creds(emulator), settings_for(emulator))
    line = result.checks[1]
    assert line.name == "Credentials valid" and not line.ok
    assert "AADSTS50076" in line.detail and "multi-factor" in line.detail and "MFA" in line.fix
    assert all(c.detail.startswith("not checked:") and not c.ok for c in result.checks[2:])
    assert result.token_provider is None and result.checks[0].ok


def test_wrong_password_keeps_the_secret_out_of_every_line(emulator: DynamicsEmulator) -> None:
    result = run_preflight(creds(emulator, password="hunter2-wrong"), settings_for(emulator))
    assert failed(result) == list(CHECK_NAMES[1:])
    assert "AADSTS50126" in result.checks[1].detail
    assert all("hunter2" not in c.detail + c.fix for c in result.checks)


@pytest.mark.parametrize("emulator", [{"apps": [EmulatedApp(client_id=APP_ID, secret="s", app_user_email="app@contoso.com")]}],
                         indirect=True)
def test_client_credentials_match_the_application_user(emulator: DynamicsEmulator) -> None:
    ok = run_preflight(creds(emulator, "app@contoso.com", "", client_id=APP_ID, client_secret="s"), settings_for(emulator))
    assert ok.ok and "client credentials" in ok.checks[1].detail
    other = run_preflight(creds(emulator, "sync@contoso.com", "", client_id=APP_ID, client_secret="s"),
                          settings_for(emulator))
    assert failed(other) == ["Username matches the sync user"]
    assert "application user" in other.checks[2].detail and "app@contoso.com" in other.checks[2].detail


@pytest.mark.parametrize("emulator", [{"users": [EmulatedUser(username="sync@contoso.com", is_sync_user=False)]}],
                         indirect=True)
def test_a_user_outside_the_organization_fails_without_crashing(emulator: DynamicsEmulator) -> None:
    result = run_preflight(creds(emulator), settings_for(emulator))
    assert failed(result) == list(CHECK_NAMES[2:])
    assert result.checks[2].fix and result.checks[3].detail.startswith("not checked:")


def test_unreachable_url(emulator: DynamicsEmulator) -> None:
    credentials = creds(emulator).model_copy(update={"url": f"https://localhost:{free_port()}"})
    result = run_preflight(credentials, settings_for(emulator))
    assert failed(result) == list(CHECK_NAMES)
    assert result.checks[0].detail.startswith("Cannot reach https://localhost:")
    assert emulator.token_requests == 0


def test_untrusted_certificate_points_at_ca_bundle(emulator: DynamicsEmulator) -> None:
    result = run_preflight(creds(emulator), Settings(ENTRA_AUTHORITY_HOST=emulator.authority_host,
                                                          DYNAMICS_HOST_ALLOWLIST="localhost"))
    assert not result.checks[0].ok and "CA_BUNDLE" in result.checks[0].fix


def test_invalid_url_is_a_failed_line(emulator: DynamicsEmulator) -> None:
    result = run_preflight(creds(emulator).model_copy(update={"url": "http://org.crm.dynamics.com"}),
                           settings_for(emulator))
    assert failed(result) == list(CHECK_NAMES) and "https" in result.checks[0].detail


@pytest.fixture
def web_page(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """An HTTPS site that is not Dataverse: every path is a 200 HTML page."""
    ca = trustme.CA()
    cert = ca.issue_cert("localhost", "127.0.0.1")
    ca_path, cert_path, key_path = tmp_path / "ca.pem", tmp_path / "cert.pem", tmp_path / "key.pem"
    ca.cert_pem.write_to_path(str(ca_path))
    cert.cert_chain_pems[0].write_to_path(str(cert_path))
    cert.private_key_pem.write_to_path(str(key_path))

    async def page(request: Any) -> HTMLResponse:
        return HTMLResponse("<html>Welcome to our intranet</html>")

    server = ServerThread(Starlette(routes=[Route("/{path:path}", page)]), certfile=str(cert_path),
                          keyfile=str(key_path)).start()
    yield f"https://localhost:{server.port}", str(ca_path)
    server.stop()


def test_a_site_that_is_not_dataverse(web_page: tuple[str, str]) -> None:
    url, ca_path = web_page
    credentials = Credentials(username="sync@contoso.com", password="x", url=url)
    result = run_preflight(credentials, Settings(CA_BUNDLE=ca_path, ENTRA_AUTHORITY_HOST="127.0.0.1:1",
                                                  DYNAMICS_HOST_ALLOWLIST="localhost"))
    assert failed(result) == list(CHECK_NAMES)
    assert "not as a Dynamics 365 (Dataverse) organization" in result.checks[0].detail


def test_a_url_into_the_servers_own_network_is_refused_and_sent_nothing(emulator: DynamicsEmulator) -> None:
    """The emulator answers like Dataverse; under a name the allowlist does not list, it gets nothing."""
    for host in ("127.0.0.1", "2130706433", "0x7f.0.0.1", "127.1", "[::ffff:127.0.0.1]"):
        credentials = creds(emulator).model_copy(update={"url": f"https://{host}:{emulator.port}"})
        result = run_preflight(credentials, settings_for(emulator))
        assert failed(result) == list(CHECK_NAMES)
        assert "loopback address (127.0.0.1)" in result.checks[0].detail
        assert "DYNAMICS_HOST_ALLOWLIST" in result.checks[0].fix
    assert emulator.requests == 0 and emulator.token_requests == 0


@pytest.mark.parametrize("emulator", [{"untracked_entities": {"account"}}], indirect=True)
def test_a_table_without_change_tracking_is_explained_and_does_not_block(emulator: DynamicsEmulator) -> None:
    result = run_preflight(creds(emulator), settings_for(emulator))
    assert result.ok
    line = next(c for c in result.checks if c.name == "Change tracking on the synced tables")
    assert "off for accounts" in line.detail and "leads" not in line.detail.split(":")[0]
    assert "Power Apps → Tables → Account → Properties → Advanced options" in line.detail
    assert "not detected" in line.detail
