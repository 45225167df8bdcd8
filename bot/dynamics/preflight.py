"""The pre-flight checklist of Step 1, modelled on Marketo's "Validate Sync" (D7).

Every line is a `CheckResult`; a failed line carries a fix. A line that cannot run because an
earlier one failed is shown as not checked (ok=False, detail "not checked: ..."). Sign-in and
Dataverse failures become failed lines: `run_preflight` does not raise for them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from bot.config import Settings
from bot.dynamics.auth import EntraTokenProvider, Flow, sign_in
from bot.dynamics.client import DataverseClient, SystemUser, WhoAmI, probe_dataverse
from bot.dynamics.egress import HostAllowlist, check_host
from bot.dynamics.errors import DynamicsError
from bot.dynamics.validate import validate_dynamics_url
from bot.models import CheckResult, Credentials, Entity
from bot.sync.mapping import how_to_track_changes
from bot.sync.opportunities import OPTIONAL_ENTITIES

URL_REACHABLE = "Dynamics URL reachable"
CREDENTIALS_VALID = "Credentials valid"
USERNAME_MATCHES = "Username matches the sync user"
HAS_ROLE = "Sync user has the Marketo Sync User role"
SOLUTION_INSTALLED = "Marketo solution installed"
USER_ENABLED = "Sync user is enabled"
CHANGE_TRACKING = "Change tracking on the synced tables"
CHECK_NAMES = (URL_REACHABLE, CREDENTIALS_VALID, USERNAME_MATCHES, HAS_ROLE, SOLUTION_INSTALLED, USER_ENABLED,
               CHANGE_TRACKING)


@dataclass
class Preflight:
    checks: list[CheckResult]
    ok: bool
    sync_user_id: str | None = None
    sync_user_name: str | None = None
    organization_id: str | None = None  # WhoAmI's OrganizationId: which org this is, whatever its URL
    token_provider: EntraTokenProvider | None = field(default=None, repr=False)


def _passed(name: str, detail: str) -> CheckResult:
    return CheckResult(name=name, ok=True, detail=detail)


def _failed(name: str, error: DynamicsError) -> CheckResult:
    return CheckResult(name=name, ok=False, detail=error.problem, fix=error.fix)


def _not_checked(names: tuple[str, ...], because: str) -> list[CheckResult]:
    return [CheckResult(name=n, ok=False, detail=f"not checked: {because}") for n in names]


def _identities(user: SystemUser) -> set[str]:
    return {value.strip().lower() for value in (user.domainname, user.internalemailaddress) if value}


def _user_checks(
    client: DataverseClient, credentials: Credentials, provider: EntraTokenProvider, settings: Settings
) -> tuple[list[CheckResult], SystemUser | None, WhoAmI | None]:
    """Lines 3-6: who we are signed in as, its role, the solution, and whether the user is enabled."""
    try:
        whoami = client.whoami()
        user = client.get_user(whoami.user_id)
    except DynamicsError as exc:
        return [_failed(USERNAME_MATCHES, exc), *_not_checked(CHECK_NAMES[3:], "the sync user could not be read")], None, None
    checks: list[CheckResult] = []
    username = credentials.username.strip().lower()
    shown = user.domainname or user.internalemailaddress or user.fullname or whoami.user_id
    who = "the application user" if provider.flow is Flow.client_credentials else "the signed-in user"
    if username in _identities(user):
        checks.append(_passed(USERNAME_MATCHES, f"Signed in as {shown} ({user.fullname or 'no name'})."))
    else:
        checks.append(CheckResult(
            name=USERNAME_MATCHES, ok=False,
            detail=f"Dynamics knows {who} as {shown}, not {credentials.username.strip()}.",
            fix="Enter the sync user's name exactly as Dynamics shows it (its User Name / primary email).",
        ))

    def line(name: str, run: Callable[[], CheckResult]) -> CheckResult:
        try:
            return run()
        except DynamicsError as exc:
            return _failed(name, exc)

    def role() -> CheckResult:
        roles = client.user_roles(whoami.user_id)
        if any(r.strip().lower() == settings.DYNAMICS_SYNC_ROLE.lower() for r in roles):
            return _passed(HAS_ROLE, f"{shown} has the {settings.DYNAMICS_SYNC_ROLE} role.")
        return CheckResult(
            name=HAS_ROLE, ok=False,
            detail=f"{shown} does not have the {settings.DYNAMICS_SYNC_ROLE} security role.",
            fix=f"In Dynamics, Settings > Security > Users: open {shown}, Manage Roles, tick "
            f"{settings.DYNAMICS_SYNC_ROLE} (installed by the Marketo solution).",
        )

    def solution() -> CheckResult:
        if client.solution_installed(settings.DYNAMICS_SOLUTION_NAME):
            return _passed(SOLUTION_INSTALLED, f"The {settings.DYNAMICS_SOLUTION_NAME} solution is installed.")
        return CheckResult(
            name=SOLUTION_INSTALLED, ok=False,
            detail=f"The {settings.DYNAMICS_SOLUTION_NAME} solution is not installed in this organization.",
            fix="Import the Marketo solution (Marketo Admin > CRM > Microsoft Dynamics has the download), "
            "publish all customizations, then run the checks again.",
        )

    def enabled() -> CheckResult:
        if not user.isdisabled:
            return _passed(USER_ENABLED, f"{shown} is enabled.")
        return CheckResult(name=USER_ENABLED, ok=False, detail=f"{shown} is disabled in Dynamics.",
                           fix="Enable the user in Dynamics (Settings > Security > Users) and run the checks again.")

    def tracking() -> CheckResult:
        """Passes either way: a table without change tracking is synced by last-modified time instead."""
        off = [entity for entity in Entity
               if entity not in OPTIONAL_ENTITIES and not client.change_tracking_enabled(entity)]
        if not off:
            return _passed(CHANGE_TRACKING, "Change tracking is on for leads, contacts and accounts: changes "
                                             "and deletes reach Marketo every few minutes.")
        names = ", ".join(f"{e.value}s" for e in off)
        steps = "; ".join(f"{e.value}s: {how_to_track_changes(e)}" for e in off)
        return _passed(CHANGE_TRACKING, f"Change tracking is off for {names}: those are synced by last-modified "
                                        f"time, and records deleted in Dynamics are not detected. To turn it on: {steps}.")

    checks += [line(HAS_ROLE, role), line(SOLUTION_INSTALLED, solution), line(USER_ENABLED, enabled),
               line(CHANGE_TRACKING, tracking)]
    return checks, user, whoami


def run_preflight(credentials: Credentials, settings: Settings, *, timeout: float = 30.0) -> Preflight:
    """Run the checklist. Never raises for a sign-in or Dataverse failure."""
    url, url_error = validate_dynamics_url(credentials.url)
    if url_error:
        checks = [CheckResult(name=URL_REACHABLE, ok=False, detail=url_error,
                              fix="Copy the URL of your Dynamics organization, e.g. https://yourorg.crm.dynamics.com.")]
        return Preflight(checks + _not_checked(CHECK_NAMES[1:], "the Dynamics URL is not valid"), ok=False)
    credentials = credentials.model_copy(update={"url": url})
    allowlist = HostAllowlist(settings.DYNAMICS_HOST_ALLOWLIST)
    try:
        check_host(url, allowlist)
        probe_dataverse(url, ca_bundle=settings.CA_BUNDLE, host_allowlist=allowlist, timeout=min(timeout, 15.0))
    except DynamicsError as exc:
        return Preflight([_failed(URL_REACHABLE, exc), *_not_checked(CHECK_NAMES[1:], "the Dynamics URL did not answer")],
                         ok=False)
    checks = [_passed(URL_REACHABLE, f"{url} answers as a Dataverse organization.")]
    try:
        provider = sign_in(credentials, settings, timeout=timeout)
    except DynamicsError as exc:
        checks += [_failed(CREDENTIALS_VALID, exc), *_not_checked(CHECK_NAMES[2:], "the sign-in failed")]
        return Preflight(checks, ok=False)
    flow = {Flow.public_ropc: "username and password", Flow.confidential_ropc: "username, password and client secret",
            Flow.client_credentials: "client credentials (application user)"}[provider.flow]
    checks.append(_passed(CREDENTIALS_VALID, f"Signed in to Entra ID with {flow}."))
    with DataverseClient(url, provider, ca_bundle=settings.CA_BUNDLE, host_allowlist=allowlist, timeout=timeout,
                         max_retries=2) as client:
        user_checks, user, whoami = _user_checks(client, credentials, provider, settings)
    checks += user_checks
    return Preflight(
        checks=checks,
        ok=all(c.ok for c in checks),
        sync_user_id=user.systemuserid if user else None,
        sync_user_name=(user.fullname or user.domainname) if user else None,
        organization_id=whoami.organization_id if whoami else None,
        token_provider=provider,
    )
