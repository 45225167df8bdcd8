"""Typed errors for Entra ID sign-in and the Dataverse Web API.

Each error says in plain language what happened (`problem`) and what to do (`fix`);
`user_message` is both together. The pre-flight checklist shows them as a failed line's
detail and fix. No message ever carries a password, secret or token.
"""

from __future__ import annotations

from bot.bounded_text import cut
from bot.errors import BotError


class DynamicsError(BotError):
    """Root of the errors in this package: a problem plus the fix, for the checklist."""

    problem: str = "Something went wrong talking to Dynamics."
    fix: str = "Try again in a moment."

    def __init__(self, problem: str | None = None, fix: str | None = None, *, detail: str | None = None) -> None:
        if problem:
            self.problem = problem
        if fix is not None:
            self.fix = fix
        super().__init__(f"{self.problem} {self.fix}".strip(), detail=cut(detail) if detail else None)


# -- sign-in (Entra ID) ---------------------------------------------------------------------------


class SignInError(DynamicsError):
    """Entra ID refused the sign-in. `code` is the OAuth `error`, `aadsts` the AADSTS number."""

    problem = "Entra ID did not accept the sign-in."
    fix = "Check the username, password and (if given) the Client ID and Client Secret, then try again."

    def __init__(
        self,
        code: str = "unknown",
        aadsts: int | None = None,
        problem: str | None = None,
        fix: str | None = None,
        *,
        detail: str | None = None,
    ) -> None:
        self.code = code
        self.aadsts = aadsts
        if aadsts and not problem:
            problem = f"{self.problem.rstrip('.')} (AADSTS{aadsts})."
        super().__init__(problem, fix, detail=detail)


class UsernameFormatError(SignInError):
    problem = "Entra ID cannot sign in with a DOMAIN\\user name."
    fix = "Enter the sync user's sign-in name in the form user@domain.com."


class WrongPassword(SignInError):
    problem = "The username or password is wrong."
    fix = "Re-enter the sync user's password; check Caps Lock and that there are no spaces at either end."


class UnknownUser(SignInError):
    problem = "That user does not exist in the Entra ID tenant."
    fix = "Check the spelling of the username, and that it is the sync user's sign-in name (user@domain.com)."


class AccountLocked(SignInError):
    problem = "The sync user's account is locked after too many failed sign-ins."
    fix = "Wait for the lockout to end or ask an Entra ID admin to unlock it, then try again."


class PasswordExpired(SignInError):
    problem = "The sync user's password has expired."
    fix = "Sign in once as the sync user in a browser to set a new password, then enter the new one here."


class AccountDisabled(SignInError):
    problem = "The sync user's account is disabled in Entra ID."
    fix = "Ask an Entra ID admin to enable the account (or use another dedicated sync user)."


class MfaRequired(SignInError):
    problem = "Entra ID asks the sync user for multi-factor authentication, which a password sign-in cannot answer."
    fix = (
        "Marketo's setup requires MFA to be off for the dedicated sync user: exclude it from the MFA / "
        "Conditional Access policy, or connect with a Client ID and Client Secret instead."
    )


class MfaRegistrationRequired(MfaRequired):
    problem = "Entra ID wants the sync user to register for multi-factor authentication."


class BadClientSecret(SignInError):
    problem = "The Client Secret is not valid for that Client ID."
    fix = "Copy the secret's Value (not its Secret ID) from the app registration's Certificates & secrets page."


class ClientSecretExpired(BadClientSecret):
    problem = "The Client Secret has expired."
    fix = "Create a new client secret in the app registration and enter it here."


class ClientSecretRequired(SignInError):
    problem = "This app registration only accepts sign-ins with a client secret."
    fix = "Enter the app's Client ID and Client Secret, or allow public client flows on the app registration."


class UnknownApp(SignInError):
    problem = "Entra ID does not know that Client ID in this tenant."
    fix = "Copy the Application (client) ID from the app registration's Overview page, and check the tenant."


class UnknownTenant(SignInError):
    problem = "Entra ID found no tenant for the username's domain."
    fix = "Check the domain part of the username (user@yourcompany.com), or set ENTRA_TENANT to the tenant id."


class ConsentRequired(SignInError):
    problem = "The app has not been granted consent to use Dynamics in this tenant."
    fix = "Ask an Entra ID admin to grant admin consent for the app's Dynamics CRM permission."


class ConditionalAccessBlocked(SignInError):
    problem = "A Conditional Access policy blocked the sign-in."
    fix = "Ask an Entra ID admin to exclude the sync user (or this app) from the blocking policy."


class SignInUnreachable(SignInError):
    problem = "The sign-in service could not be reached."
    fix = "Check ENTRA_AUTHORITY_HOST, the network, and CA_BUNDLE if a proxy re-signs TLS."


_BY_AADSTS: dict[int, type[SignInError]] = {
    50126: WrongPassword,
    50034: UnknownUser,
    50053: AccountLocked,
    50055: PasswordExpired,
    50057: AccountDisabled,
    50076: MfaRequired,
    50079: MfaRegistrationRequired,
    7000215: BadClientSecret,
    7000222: ClientSecretExpired,
    7000218: ClientSecretRequired,
    700016: UnknownApp,
    90002: UnknownTenant,
    65001: ConsentRequired,
    50158: ConditionalAccessBlocked,
    53003: ConditionalAccessBlocked,
    50131: ConditionalAccessBlocked,
}


def sign_in_error(code: str, aadsts: int | None, *, detail: str | None = None) -> SignInError:
    """The typed error for an Entra ID error response (branching on the AADSTS number)."""
    cls = _BY_AADSTS.get(aadsts or 0, SignInError)
    return cls(code, aadsts, detail=detail)


# -- Dataverse ------------------------------------------------------------------------------------


class DynamicsUnreachable(DynamicsError):
    def __init__(self, url: str, reason: str = "") -> None:
        self.url = url = cut(url)
        tls = "certificate" in reason.lower() or "ssl" in reason.lower()
        fix = (
            "The server's TLS certificate is not trusted: set CA_BUNDLE to the CA that signed it."
            if tls
            else "Check the Dynamics URL (copy it from the browser's address bar, e.g. https://org.crm.dynamics.com) "
            "and that this server can reach it."
        )
        super().__init__(f"Cannot reach {url}.", fix, detail=f"cannot reach {url}: {reason}")


class NotDataverse(DynamicsError):
    def __init__(self, url: str, reason: str = "") -> None:
        self.url = url = cut(url)
        super().__init__(
            f"{url} answers, but not as a Dynamics 365 (Dataverse) organization.",
            "Use the organization URL, e.g. https://yourorg.crm.dynamics.com (Settings > Customizations > "
            "Developer Resources shows it).",
            detail=f"not Dataverse: {url}: {reason}",
        )


class DataverseError(DynamicsError):
    """An HTTP error from the Web API. `code` is the HRESULT string of the error body (often empty)."""

    problem = "Dynamics returned an error."

    def __init__(
        self, status: int, code: str = "", message: str = "", *, problem: str | None = None, fix: str | None = None
    ) -> None:
        self.status = status
        self.code = code = cut(code)
        self.message = message = cut(message)
        super().__init__(problem, fix, detail=f"Dataverse HTTP {status} {code}: {message}".strip())


class DataverseAccessDenied(DataverseError):
    problem = "The sync user is not allowed to read this in Dynamics."
    fix = "Give the sync user the Marketo Sync User security role (and read access to the synced tables)."


class DataverseNotFound(DataverseError):
    problem = "Dynamics has no such table, record or field."
    fix = "Check that the Marketo solution is installed and that the selected fields still exist."


class DataverseBadRequest(DataverseError):
    problem = "Dynamics rejected the request."
    fix = "A selected field may have been deleted or renamed in Dynamics: re-open the field selection."


class DataverseUnauthorized(DataverseError):
    problem = "Dynamics did not accept the sign-in token."
    fix = "Check that the sync user is a user of this Dynamics organization, then run the checks again."


class DataverseThrottled(DataverseError):
    problem = "Dynamics kept throttling requests (service protection limits)."
    fix = "The sync will pick up where it left off; try again later or lower other load on the sync user."


class ChangeTokenExpired(DataverseError):
    problem = "The saved Dynamics change-tracking token is no longer valid."
    fix = "A full re-sync of this table is needed to catch up."


class RecordMissing(DataverseNotFound):
    problem = "The Dynamics record no longer exists."
    fix = "It was probably deleted in Dynamics; the next sync marks the Marketo person as deleted."


class DataverseValidationError(DataverseBadRequest):
    """Dynamics refused the values of a write. `attribute` names the column at fault (None when the
    answer does not say); `problem` and `fix` name it in plain words."""

    problem_template = "Dynamics refused a value of the {entity}: {attribute}."
    fix_template = "Correct {attribute} in Marketo, then sync again."

    def __init__(
        self, status: int, code: str = "", message: str = "", *, entity: str, attribute: str | None = None
    ) -> None:
        self.entity = entity
        self.attribute = attribute
        names = {"entity": entity, "attribute": f"'{attribute}'" if attribute else "one of the fields"}
        super().__init__(status, code, message, problem=self.problem_template.format(**names),
                         fix=self.fix_template.format(**names))


class RequiredAttributeMissing(DataverseValidationError):
    """A required column (`SystemRequired` or `ApplicationRequired`) has no value; `missing` lists
    every such column of the record."""

    problem_template = "The {entity} has no value for {attribute}, which Dynamics requires."
    fix_template = "Fill in {attribute} in Marketo (or map a Marketo field to it), then sync again."

    def __init__(self, entity: str, missing: list[str], status: int = 0, code: str = "", message: str = "") -> None:
        self.missing = list(missing)
        super().__init__(status, code, message or f"missing: {', '.join(missing)}", entity=entity,
                         attribute=", ".join(missing))


class InvalidValue(DataverseValidationError):
    problem_template = "Dynamics refused the value of {attribute} for the {entity} (wrong type or too long)."
    fix_template = "Correct {attribute} in Marketo so it fits the Dynamics column, then sync again."


class UnknownAttribute(DataverseValidationError):
    problem_template = "Dynamics has no column {attribute} on the {entity} table."
    fix_template = "The column may have been deleted or renamed in Dynamics: re-open the field selection."


# -- where the bot may connect ----------------------------------------------------------------------


class HostRefused(DynamicsError):
    """The Dynamics URL leads to an address inside a private network: nothing is sent there."""

    fix = ("The bot does not connect to private, loopback or link-local addresses unless "
           "DYNAMICS_HOST_ALLOWLIST lists the host.")

    def __init__(self, host: str, address: str, kind: str) -> None:
        self.host = host
        self.address = address
        self.kind = kind
        super().__init__(f"{host} resolves to a {kind} address ({address}).", detail=f"refused {host}: {kind} {address}")


class HostLookupFailed(DynamicsError):
    """The Dynamics URL's host name could not be resolved (or not quickly enough)."""

    fix = "Check the spelling of the Dynamics URL (copy it from the browser's address bar)."

    def __init__(self, host: str, reason: str) -> None:
        self.host = host
        super().__init__(f"The host {host} could not be found ({reason}).", detail=f"lookup of {host} failed: {reason}")


class UnsafeLink(DynamicsError):
    """Dynamics answered with a paging link the client will not follow (another server, or a loop)."""

    fix = ("The sync is paused and nothing was sent to that link. Check that the Dynamics URL is the "
           "organization's own address, then resume the sync.")


class OffOriginLink(UnsafeLink):
    def __init__(self, link_origin: str, org_origin: str) -> None:
        super().__init__(f"Dynamics sent a next-page link to {link_origin}, which is not the organization's "
                         f"address ({org_origin}).", detail=f"off-origin link to {link_origin}")


class RepeatedLink(UnsafeLink):
    def __init__(self) -> None:
        super().__init__("Dynamics sent a next-page link it had already sent in this read; following it "
                         "would read the same pages for ever.", detail="repeated next-page link")
