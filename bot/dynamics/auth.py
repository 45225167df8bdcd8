"""Entra ID sign-in with msal, and a thread-safe token provider for the Dataverse client.

Three flows, chosen from what the user typed in Step 1:
- username + password: public client ROPC, scope `<url>/user_impersonation`;
- Client ID + Secret + username + password: confidential client ROPC, scope `<url>/.default`
  (so WhoAmI is the sync user and the username check means something);
- Client ID + Secret, no password: client credentials, scope `<url>/.default` (the application user).
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import msal
import requests
from msal.authority import WELL_KNOWN_AUTHORITY_HOSTS

from bot.config import Settings
from bot.dynamics.errors import (
    SignInError,
    SignInUnreachable,
    UnknownTenant,
    UsernameFormatError,
    sign_in_error,
)
from bot.dynamics.validate import validate_username
from bot.models import Credentials
from bot.tls import ca_file

PUBLIC_CLIENT_ID = "51f81489-12ee-4a9e-aaae-a2591f45987d"
"""The well-known Dynamics sample app id, used as the public client when no Client ID is given."""

REFRESH_MARGIN_SECONDS = 300.0
"""Refresh this long before expiry (msal also treats < 300 s left as expired)."""

_AADSTS = re.compile(r"AADSTS(\d+)")


class Flow(StrEnum):
    public_ropc = "public_ropc"
    confidential_ropc = "confidential_ropc"
    client_credentials = "client_credentials"


class PortRestoringSession(requests.Session):
    """A requests session for msal that puts the authority's port back where msal dropped it.

    msal builds the user-realm discovery URL from the authority's host name only
    (`https://{hostname}/common/userrealm/...`), so an authority with a port (an on-premises
    proxy, an emulator) gets that call on port 443. Any URL on the authority's host that has
    no port gets the authority's port again; every other URL passes unchanged.
    """

    def __init__(self, authority_netloc: str, verify: str, timeout: float) -> None:
        super().__init__()
        parts = urlsplit(f"https://{authority_netloc}")
        self._host = (parts.hostname or "").lower()
        self._port = parts.port
        self._timeout = timeout
        self.verify = verify

    def restore_port(self, url: str) -> str:
        parts = urlsplit(url)
        if self._port is None or parts.port is not None or (parts.hostname or "").lower() != self._host:
            return url
        return urlunsplit(parts._replace(netloc=f"{parts.netloc}:{self._port}"))

    def request(self, method: str, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", self._timeout)
        # An explicit per-request verify: requests otherwise lets REQUESTS_CA_BUNDLE override the session's.
        kwargs.setdefault("verify", self.verify)
        target = url.decode() if isinstance(url, bytes) else url
        return super().request(method, self.restore_port(target), *args, **kwargs)


def choose_flow(credentials: Credentials) -> Flow:
    if not credentials.confidential:
        return Flow.public_ropc
    return Flow.confidential_ropc if credentials.password.get_secret_value() else Flow.client_credentials


def tenant_for(credentials: Credentials, settings: Settings) -> str:
    if settings.ENTRA_TENANT:
        return settings.ENTRA_TENANT
    username = credentials.username.strip()
    if "@" not in username:
        raise UsernameFormatError("invalid_username")
    return username.rsplit("@", 1)[1].lower()


def _aadsts(result: dict[str, Any]) -> int | None:
    codes = result.get("error_codes") or []
    if codes:
        return int(codes[0])
    found = _AADSTS.search(str(result.get("error_description", "")))
    return int(found.group(1)) if found else None


class EntraTokenProvider:
    """Access tokens for one Dynamics org: cached, refreshed before expiry, safe across threads."""

    def __init__(
        self,
        credentials: Credentials,
        settings: Settings,
        *,
        clock: Callable[[], float] = time.time,
        timeout: float = 30.0,
    ) -> None:
        self._credentials = credentials
        self._settings = settings
        self._clock = clock
        self._timeout = timeout
        self.flow = choose_flow(credentials)
        self.resource = credentials.url.rstrip("/")
        self.authority = f"https://{settings.ENTRA_AUTHORITY_HOST}/{tenant_for(credentials, settings)}"
        self._lock = threading.Lock()
        self._app: msal.ClientApplication | None = None
        self._token: str | None = None
        self._refresh_at = 0.0
        self.acquisitions = 0

    @property
    def scopes(self) -> list[str]:
        suffix = "user_impersonation" if self.flow is Flow.public_ropc else ".default"
        return [f"{self.resource}/{suffix}"]

    def token(self) -> str:
        """A valid access token; signs in again when the cached one is close to expiry."""
        with self._lock:
            if self._token is None or self._clock() >= self._refresh_at:
                self._acquire()
            assert self._token is not None
            return self._token

    def invalidate(self) -> None:
        """Forget the cached token (after a 401), including msal's own cache of it."""
        with self._lock:
            self._token = None
            if self._app is not None:
                cache = self._app.token_cache
                for item in list(cache.search(msal.TokenCache.CredentialType.ACCESS_TOKEN)):
                    cache.remove_at(item)

    def _application(self) -> msal.ClientApplication:
        if self._app is not None:
            return self._app
        host = self._settings.ENTRA_AUTHORITY_HOST
        options: dict[str, Any] = {
            "authority": self.authority,
            "http_client": PortRestoringSession(host, ca_file(self._settings.CA_BUNDLE), self._timeout),
            "instance_discovery": (urlsplit(f"https://{host}").hostname or "") in WELL_KNOWN_AUTHORITY_HOSTS,
        }
        try:
            if self.flow is Flow.public_ropc:
                self._app = msal.PublicClientApplication(self._credentials.client_id or PUBLIC_CLIENT_ID, **options)
            else:
                secret = self._credentials.client_secret.get_secret_value() if self._credentials.client_secret else ""
                self._app = msal.ConfidentialClientApplication(
                    self._credentials.client_id, client_credential=secret, **options
                )
        except requests.RequestException as exc:
            raise SignInUnreachable("unreachable", detail=f"cannot reach {host}: {type(exc).__name__}") from None
        except ValueError as exc:
            # msal reads the tenant's OpenID configuration in the constructor; a 4xx there
            # (AADSTS90002 on Entra) is the only ValueError it raises for a well-formed authority.
            found = _AADSTS.search(str(exc.__context__ or ""))
            code = int(found.group(1)) if found else 90002
            error = sign_in_error("invalid_tenant", code) if code != 90002 else UnknownTenant("invalid_tenant", 90002)
            raise error from None
        return self._app

    def _acquire(self) -> None:
        app = self._application()
        try:
            if self.flow is Flow.client_credentials:
                assert isinstance(app, msal.ConfidentialClientApplication)
                result = app.acquire_token_for_client(scopes=self.scopes)
            else:
                result = app.acquire_token_by_username_password(
                    self._credentials.username.strip(), self._credentials.password.get_secret_value(), scopes=self.scopes
                )
        except requests.RequestException as exc:
            raise SignInUnreachable("unreachable", detail=f"sign-in request failed: {type(exc).__name__}") from None
        if "access_token" not in result:
            raise sign_in_error(
                str(result.get("error", "unknown")), _aadsts(result), detail=str(result.get("error_description", ""))
            )
        self.acquisitions += 1
        lifetime = float(result.get("expires_in", 3600))
        self._token = result["access_token"]
        self._refresh_at = self._clock() + lifetime - min(REFRESH_MARGIN_SECONDS, lifetime / 10)


def sign_in(credentials: Credentials, settings: Settings, **options: Any) -> EntraTokenProvider:
    """Sign in once (raising the typed `SignInError`s) and return the provider holding the token."""
    problem = validate_username(credentials.username)
    if problem and "\\" in credentials.username:
        raise UsernameFormatError("invalid_username", problem=problem)
    if problem:
        raise SignInError("invalid_username", problem=problem, fix="Correct the username and try again.")
    provider = EntraTokenProvider(credentials, settings, **options)
    provider.token()
    return provider
