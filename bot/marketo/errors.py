"""Typed Marketo errors, each with a plain-language `user_message` that says what to do.

Marketo answers most failures with HTTP 200 and `success:false` (reference C3/C5);
`error_for()` maps a code to the right class. Retryable errors are retried by the
client; fatal ones stop the call. Exception text carries the code and Marketo's own
message (bounded), never a token or secret.
"""

from __future__ import annotations

from bot.bounded_text import cut
from bot.errors import BotError

RETRYABLE_CODES = frozenset({"604", "606", "608", "611", "614", "615", "713", "719"})
RATE_CODES = frozenset({"606", "615"})
TOKEN_CODES = frozenset({"601", "602"})
# Codes Marketo does not count against the daily quota or the rate limit (C5).
UNCOUNTED_CODES = frozenset({"601", "602", "604", "605", "608", "611"})

_BUG = (
    "The bot sent Marketo a request it could not accept (code {code}). This is a bug in the bot; "
    "please report it with the time it happened."
)
_TRANSIENT = (
    "Marketo is temporarily unavailable (code {code}). The bot retried several times; "
    "the sync will resume when you press Resume or on the next scheduled run."
)

_MESSAGES: dict[str, str] = {
    "601": "Marketo rejected the bot's access token even after signing in again. Check that the "
    "LaunchPoint custom service is still active, then try again.",
    "602": "Marketo's access token expired and a fresh one was refused. Check that the LaunchPoint "
    "custom service is still active, then try again.",
    "603": "Marketo denied access. The API user's role lacks a permission the bot needs (Read-Write Lead, "
    "Read-Write Schema Custom Field, Read-Write Company) or this server's IP address is not on "
    "Marketo's IP allowlist. Ask a Marketo admin to check Admin > Users & Roles and Admin > Web Services.",
    "604": _TRANSIENT,
    "606": "Marketo's rate limit (100 calls per 20 seconds) kept being hit, even after waiting. Another "
    "integration may be using the same Marketo subscription heavily; try again later.",
    "607": "Marketo's daily API quota is used up; the sync is paused and resumes after midnight CST "
    "or when you press Resume.",
    "608": _TRANSIENT,
    "611": _TRANSIENT,
    "614": "Marketo says the subscription is invalid (code 614). Check MARKETO_BASE_URL points at your "
    "own instance (Admin > Web Services > REST API endpoint); if it does, try again later.",
    "615": "Marketo's limit of 10 simultaneous API calls kept being hit. Another integration may be "
    "using the same Marketo subscription heavily; try again later.",
    "616": "This Marketo subscription type does not allow the REST API. Ask your Marketo account team "
    "to enable API access.",
    "713": _TRANSIENT,
    "719": _TRANSIENT,
    "1018": "Marketo's own CRM sync is enabled on this instance, which makes this API read-only. "
    "Disable the native Dynamics or Salesforce sync in Marketo Admin before using this bot.",
    "413": "A request to Marketo was larger than its 1 MB limit. This is a bug in the bot; please report it.",
}


class MarketoError(BotError):
    """Base of every Marketo error. `code` is Marketo's code as a string (or an HTTP status)."""

    retryable: bool = False
    user_message = "Marketo returned an error. Please try again in a moment."

    def __init__(self, code: str | None = None, message: str = "", *, user_message: str | None = None) -> None:
        self.code = code
        self.marketo_message = message = cut(message)
        if user_message is None and code is not None:
            user_message = _MESSAGES.get(code, _BUG).format(code=code)
        detail = f"Marketo error {code}: {message}" if code else message or None
        super().__init__(user_message, detail=detail)


class MarketoRetryable(MarketoError):
    """A transient failure: rate/concurrency limits, timeouts, HTTP 5xx, connection errors."""

    retryable = True
    user_message = "Marketo could not be reached just now. The bot will try again."


class MarketoFatal(MarketoError):
    """A failure retrying cannot fix: permissions, quota, a malformed request."""


class DailyQuotaExceeded(MarketoFatal):
    """607: stop calling until the quota resets (00:00 CST) or a person presses Resume."""


class MarketoAuthError(MarketoFatal):
    """The identity endpoint refused the client id/secret (HTTP 401)."""

    user_message = (
        "Marketo refused the client ID and secret. Check MARKETO_CLIENT_ID and MARKETO_CLIENT_SECRET: "
        "they are under Admin > LaunchPoint > View Details for the bot's custom service."
    )

    def __init__(self, message: str = "Bad client credentials") -> None:
        super().__init__("401", message, user_message=self.user_message)


class TooManyImports(MarketoFatal):
    """1016: the subscription's bulk import queue (10 jobs) stayed full for as long as the client waited."""

    user_message = ("Marketo's bulk import queue (10 jobs for the whole subscription) stayed full. Another "
                    "integration may be importing a lot; the sync resumes when you press Resume.")


class ImportTooLarge(MarketoFatal):
    """HTTP 413 on a bulk import: the file was 10 MB or more."""

    user_message = ("A bulk import file was larger than Marketo's 10 MB limit. This is a bug in the bot; "
                    "please report it with the time it happened.")


def error_for(code: str, message: str = "") -> MarketoError:
    """The typed error for a response-level (or HTTP) code."""
    if code == "607":
        return DailyQuotaExceeded(code, message)
    if code == "1016":
        return TooManyImports(code, message, user_message=TooManyImports.user_message)
    if code in RETRYABLE_CODES:
        return MarketoRetryable(code, message)
    return MarketoFatal(code, message)


def http_error(status: int, host: str) -> MarketoError:
    """The typed error for a non-200 HTTP answer from the REST API."""
    if status >= 500:
        return MarketoRetryable(
            str(status),
            f"HTTP {status}",
            user_message=f"Marketo's servers at {host} answered HTTP {status}. The bot will try again.",
        )
    if status == 413:
        return MarketoFatal("413", "request entity too large")
    if status == 414:
        return MarketoFatal("414", "request URI too long")
    return MarketoFatal(
        str(status),
        f"HTTP {status}",
        user_message=f"Marketo at {host} answered HTTP {status}. Check MARKETO_BASE_URL: it is the "
        "instance root such as https://123-ABC-456.mktorest.com, without /rest.",
    )


def connection_error(host: str, reason: str) -> MarketoRetryable:
    return MarketoRetryable(
        "connect",
        reason,
        user_message=f"Could not reach Marketo at {host}. Check MARKETO_BASE_URL and this server's "
        "network access; the bot will try again.",
    )
