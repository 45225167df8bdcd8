"""The Entra ID tenant of the Dataverse emulator on its own, over loopback HTTP (no TLS, no Dataverse)."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import httpx
import pytest
from starlette.applications import Starlette

from sandbox.dynamics import EmulatedApp, EmulatedUser
from sandbox.entra import EntraTenant
from sandbox.server import ServerThread

TENANT_ID = "6f1c0e3e-2b7a-4a8e-9a51-0c7d7a1f0d01"
SCOPE = "https://org.crm.dynamics.com/.default"


@pytest.fixture
def tenant() -> EntraTenant:
    apps = {"app-1": EmulatedApp(client_id="app-1", secret="s3cret"),
            "public": EmulatedApp(client_id="public", allow_public_client=True)}
    users = [EmulatedUser(username="sync@contoso.com", password="pw"),
             EmulatedUser(username="mfa@contoso.com", password="pw", mfa=True)]
    return EntraTenant(TENANT_ID, ["contoso.com"], users, apps, token_lifetime=3600)


@pytest.fixture
def client(tenant: EntraTenant) -> Iterator[httpx.Client]:
    server = ServerThread(Starlette(routes=tenant.routes)).start()
    try:
        with httpx.Client(base_url=server.url, timeout=10) as client:
            yield client
    finally:
        server.stop()


def _aadsts(response: httpx.Response) -> int:
    return response.json()["error_codes"][0]


def test_password_grant_issues_a_token_that_names_the_user(tenant: EntraTenant, client: httpx.Client) -> None:
    form = {"grant_type": "password", "client_id": "public", "username": "Sync@Contoso.com", "password": "pw",
            "scope": "https://org.crm.dynamics.com/user_impersonation openid profile offline_access"}
    body = client.post("/contoso.com/oauth2/v2.0/token", data=form).json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 3600
    assert tenant.principal(body["access_token"]) == ("user", "sync@contoso.com")
    assert (tenant.token_requests, tenant.tokens_issued) == (1, 1)


def test_client_secret_in_basic_auth_and_expiry(tenant: EntraTenant, client: httpx.Client) -> None:
    basic = base64.b64encode(b"app-1:s3cret").decode()
    response = client.post(f"/{TENANT_ID}/oauth2/v2.0/token", headers={"Authorization": f"Basic {basic}"},
                           data={"grant_type": "client_credentials", "scope": SCOPE})
    token = response.json()["access_token"]
    assert tenant.principal(token) == ("app", "app-1")
    tenant.expire_tokens()
    assert tenant.principal(token) is None
    assert tenant.principal("never-issued") is None


@pytest.mark.parametrize(
    ("path", "form", "status", "code"),
    [
        ("/fabrikam.com/oauth2/v2.0/token", {"grant_type": "client_credentials"}, 400, 90002),
        ("/contoso.com/oauth2/v2.0/token", {"grant_type": "device_code"}, 400, 70003),
        ("/contoso.com/oauth2/v2.0/token", {"grant_type": "client_credentials", "client_id": "nope"}, 400, 700016),
        ("/contoso.com/oauth2/v2.0/token", {"grant_type": "client_credentials", "client_id": "app-1",
                                            "client_secret": "wrong", "scope": SCOPE}, 401, 7000215),
        ("/contoso.com/oauth2/v2.0/token", {"grant_type": "client_credentials", "client_id": "app-1",
                                            "client_secret": "s3cret", "scope": "openid"}, 400, 70011),
        ("/contoso.com/oauth2/v2.0/token", {"grant_type": "password", "client_id": "public", "scope": SCOPE,
                                            "username": "sync@contoso.com", "password": "bad"}, 400, 50126),
        ("/contoso.com/oauth2/v2.0/token", {"grant_type": "password", "client_id": "public", "scope": SCOPE,
                                            "username": "mfa@contoso.com", "password": "pw"}, 400, 50076),
        ("/contoso.com/oauth2/v2.0/token", {"grant_type": "password", "client_id": "public", "scope": SCOPE,
                                            "username": "ghost@contoso.com", "password": "pw"}, 400, 50034),
    ],
)
def test_failures_are_the_documented_aadsts_errors(
    tenant: EntraTenant, client: httpx.Client, path: str, form: dict[str, str], status: int, code: int
) -> None:
    response = client.post(path, data=form)
    assert (response.status_code, _aadsts(response)) == (status, code)
    assert response.json()["error_description"].startswith(f"AADSTS{code}: ")
    assert tenant.tokens_issued == 0


def test_openid_configuration_points_at_the_tenant(client: httpx.Client) -> None:
    config = client.get("/contoso.com/v2.0/.well-known/openid-configuration").json()
    assert config["token_endpoint"] == f"https://{client.base_url.netloc.decode()}/{TENANT_ID}/oauth2/v2.0/token"
    assert _aadsts(client.get("/fabrikam.com/v2.0/.well-known/openid-configuration")) == 90002
