"""Entra ID for the Dataverse emulator: the token endpoint, the OpenID configuration, the user realm.

Password and client-credentials grants (secret in the body or HTTP Basic), the documented AADSTS
error bodies, and opaque access tokens that expire. It serves on the Dataverse emulator's HTTPS
server (MSAL only accepts https authorities); Dataverse asks `principal()` whom a bearer token
stands for.
"""

from __future__ import annotations

import base64
import secrets
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, unquote

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

if TYPE_CHECKING:
    from sandbox.dynamics import EmulatedApp, EmulatedUser

Principal = tuple[str, str]  # ("user", username in lower case) or ("app", client id in lower case)


@dataclass
class _Token:
    principal: Principal
    expires_at: float


class EntraTenant:
    """One tenant: its users and app registrations, and the access tokens it has issued."""

    def __init__(
        self,
        tenant_id: str,
        domains: list[str],
        users: list[EmulatedUser],
        apps: dict[str, EmulatedApp],
        token_lifetime: int,
    ) -> None:
        self.tenant_id = tenant_id
        self.domains = domains
        self.users = users
        self.apps = apps  # by client id in lower case
        self.token_lifetime = token_lifetime
        self.token_requests = 0
        self.tokens_issued = 0
        self._tokens: dict[str, _Token] = {}
        self._lock = threading.Lock()
        self.routes = [
            Route("/{tenant}/v2.0/.well-known/openid-configuration", self._openid_configuration),
            Route("/common/userrealm/{username}", self._user_realm),
            Route("/{tenant}/oauth2/v2.0/token", self._token, methods=["POST"]),
        ]

    def principal(self, access_token: str) -> Principal | None:
        """Whom a live access token stands for; None for an unknown or expired one."""
        token = self._tokens.get(access_token)
        if token is None or token.expires_at <= time.monotonic():
            return None
        return token.principal

    def expire_tokens(self) -> None:
        """Every access token issued so far expires now."""
        with self._lock:
            for token in self._tokens.values():
                token.expires_at = 0.0

    def _guid(self, name: str) -> str:
        return str(uuid.uuid5(uuid.UUID(self.tenant_id), name))

    def _known_tenant(self, tenant: str) -> bool:
        return tenant.lower() in {d.lower() for d in self.domains} | {self.tenant_id, "organizations"}

    @staticmethod
    def _error(host: str, error: str, code: int, text: str, status: int = 400, **extra: Any) -> Response:
        trace, correlation = str(uuid.uuid4()), str(uuid.uuid4())
        stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%SZ")
        body = {
            "error": error,
            "error_description": f"AADSTS{code}: {text}\r\nTrace ID: {trace}\r\nCorrelation ID: {correlation}"
            f"\r\nTimestamp: {stamp}",
            "error_codes": [code],
            "timestamp": stamp,
            "trace_id": trace,
            "correlation_id": correlation,
            "error_uri": f"https://{host}/error?code={code}",
            **extra,
        }
        return JSONResponse(body, status_code=status)

    async def _openid_configuration(self, request: Request) -> Response:
        tenant = request.path_params["tenant"]
        if not self._known_tenant(tenant):
            return self._error(
                _host(request), "invalid_tenant", 90002, f"Tenant '{tenant}' not found. Check to make sure you "
                "have the correct tenant ID and are signing into the correct cloud.")
        root = f"https://{_host(request)}/{self.tenant_id}"
        return JSONResponse({
            "issuer": f"{root}/v2.0",
            "authorization_endpoint": f"{root}/oauth2/v2.0/authorize",
            "token_endpoint": f"{root}/oauth2/v2.0/token",
            "device_authorization_endpoint": f"{root}/oauth2/v2.0/devicecode",
        })

    async def _user_realm(self, request: Request) -> Response:
        domain = request.path_params["username"].rsplit("@", 1)[-1]
        return JSONResponse({
            "ver": "1.0", "account_type": "Managed", "domain_name": domain,
            "cloud_instance_name": "microsoftonline.com", "cloud_audience_urn": "urn:federation:MicrosoftOnline",
        })

    def _issue(self, principal: Principal, scope: str) -> Response:
        access_token = secrets.token_urlsafe(32)
        lifetime = self.token_lifetime
        with self._lock:
            self._tokens[access_token] = _Token(principal, time.monotonic() + lifetime)
            self.tokens_issued += 1
        return JSONResponse({
            "token_type": "Bearer", "scope": scope, "expires_in": lifetime, "ext_expires_in": lifetime,
            "access_token": access_token,
        })

    def _check_client(self, host: str, form: dict[str, str], grant: str) -> tuple[EmulatedApp | None, Response | None]:
        client_id = form.get("client_id", "").lower()
        app = self.apps.get(client_id)
        if app is None:
            return None, self._error(
                host, "unauthorized_client", 700016, f"Application with identifier '{client_id}' was not found in "
                "the directory. This can happen if the application has not been installed by the administrator of "
                "the tenant or consented to by any user in the tenant.")
        secret = form.get("client_secret")
        if secret is not None:
            if app.secret is None or not secrets.compare_digest(secret, app.secret):
                return None, self._error(
                    host, "invalid_client", 7000215, "Invalid client secret provided. Ensure the secret being sent "
                    "in the request is the client secret value, not the client secret ID.", 401)
            if app.secret_expired:
                return None, self._error(
                    host, "invalid_client", 7000222, "The provided client secret keys are expired.", 401)
        elif grant == "client_credentials" or not app.allow_public_client:
            return None, self._error(
                host, "invalid_client", 7000218, "The request body must contain the following parameter: "
                "'client_assertion' or 'client_secret'.", 401)
        return app, None

    def _check_user(self, host: str, form: dict[str, str], app: EmulatedApp) -> Response | None:
        username = form.get("username", "").lower()
        user = next((u for u in self.users if u.username.lower() == username), None)
        checks: list[tuple[bool, str, int, str, dict[str, Any]]] = []
        if user is None:
            checks.append((True, "invalid_grant", 50034, "The user account {EUII Hidden} does not exist in the "
                           f"{self.tenant_id} directory. To sign into this application, the account must be added "
                           "to the directory.", {}))
        else:
            checks += [
                (user.locked, "invalid_grant", 50053, "Your account is locked because you've tried to sign in too "
                 "many times with an incorrect user ID or password.", {}),
                (not secrets.compare_digest(form.get("password", ""), user.password), "invalid_grant", 50126,
                 "Error validating credentials due to invalid username or password.", {}),
                (user.disabled, "invalid_grant", 50057, "The user account is disabled.", {}),
                (user.password_expired, "invalid_grant", 50055, "The password is expired.", {}),
                (user.mfa, "invalid_grant", 50076, "Due to a configuration change made by your administrator, or "
                 "because you moved to a new location, you must use multi-factor authentication to access "
                 f"'{self._guid('resource')}'.", {"suberror": "basic_action",
                                                  "claims": '{"access_token":{"capolids":{"essential":true,'
                                                            '"values":["' + self._guid("policy") + '"]}}}'}),
                (user.mfa_registration, "invalid_grant", 50079, "Due to a configuration change made by your "
                 "administrator, or because you moved to a new location, you must enroll in multi-factor "
                 "authentication.", {}),
                (user.blocked_by_ca, "invalid_grant", 53003, "Access has been blocked by Conditional Access "
                 "policies. The access policy does not allow token issuance.", {}),
                (not app.consented, "invalid_grant", 65001, "The user or administrator has not consented to use "
                 f"the application with ID '{app.client_id}'. Send an interactive authorization request for this "
                 "user and resource.", {}),
            ]
        for failed, error, code, text, extra in checks:
            if failed:
                return self._error(host, error, code, text, **extra)
        return None

    async def _token(self, request: Request) -> Response:
        self.token_requests += 1
        host = _host(request)
        form = dict(parse_qsl((await request.body()).decode(), keep_blank_values=True))
        basic = request.headers.get("authorization", "")
        if basic.lower().startswith("basic "):  # client_secret_basic is allowed too
            client_id, _, secret = base64.b64decode(basic[6:]).decode().partition(":")
            form.setdefault("client_id", unquote(client_id))
            form.setdefault("client_secret", unquote(secret))
        if not self._known_tenant(request.path_params["tenant"]):
            return self._error(host, "invalid_request", 90002, f"Tenant '{request.path_params['tenant']}' not found.")
        grant = form.get("grant_type", "")
        if grant not in {"password", "client_credentials"}:
            return self._error(host, "unsupported_grant_type", 70003,
                               f"The app requested an unsupported grant type '{grant}'.")
        app, failure = self._check_client(host, form, grant)
        if failure:
            return failure
        assert app is not None
        resources = [s for s in form.get("scope", "").split() if s not in {"openid", "profile", "offline_access"}]
        if len(resources) != 1 or not resources[0].endswith(("/user_impersonation", "/.default")):
            return self._error(host, "invalid_scope", 70011, "The provided value for the input parameter 'scope' "
                               f"is not valid: {form.get('scope', '')}.")
        if grant == "client_credentials":
            return self._issue(("app", app.client_id.lower()), resources[0])
        failure = self._check_user(host, form, app)
        return failure or self._issue(("user", form["username"].lower()), resources[0])


def _host(request: Request) -> str:
    """The authority host the client used (what ENTRA_AUTHORITY_HOST says)."""
    return request.headers.get("host", request.url.netloc)
