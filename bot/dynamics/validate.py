"""Pure validators for Step 1 (inline `response_action=errors`): no network, no state."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

_UPN = re.compile(r"^[^@\s\\/]+@[^@\s\\/]+\.[^@\s\\/.]+$")
_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_HOST_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")


def validate_username(username: str) -> str | None:
    """An error message for the Username field, or None when it can be used with Entra ID."""
    value = (username or "").strip()
    if not value:
        return "Enter the sync user's username, e.g. sync@contoso.com."
    if "\\" in value:
        return (
            "DOMAIN\\user is the on-premises sign-in format; Dynamics 365 online signs in through "
            "Entra ID, which needs the sync user's email-style name: user@domain.com."
        )
    if not _UPN.match(value):
        return "Enter the username as user@domain.com (the sync user's sign-in name)."
    return None


def _valid_host(host: str) -> bool:
    if host.startswith("[") and host.endswith("]"):
        return ":" in host  # an IPv6 literal; the TLS layer decides the rest
    labels = host.split(".")
    return all(_HOST_LABEL.match(label) for label in labels) and len(host) <= 253


def validate_dynamics_url(url: str) -> tuple[str, str | None]:
    """(normalized URL, error or None). Any https host and port is accepted; path and query are dropped.

    A bare host (`org.crm.dynamics.com`) is taken as https. Whether the host really is a
    Dataverse organization is the pre-flight check's job, not this one's.
    """
    value = (url or "").strip()
    if not value:
        return "", "Enter the Dynamics URL, e.g. https://yourorg.crm.dynamics.com."
    if "://" not in value:
        value = f"https://{value}"
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError:
        return value, "That URL has an invalid port; use e.g. https://yourorg.crm.dynamics.com."
    if parts.scheme.lower() != "https":
        return value, "The Dynamics URL must start with https:// (Dynamics only answers over HTTPS)."
    if parts.username is not None or parts.password is not None:
        return value, "Remove the user name or password from the URL; enter them in their own fields."
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    if not host or not _valid_host(host):
        return value, "That is not a valid web address; use e.g. https://yourorg.crm.dynamics.com."
    netloc = host if port in (None, 443) else f"{host}:{port}"
    return f"https://{netloc}", None


def validate_client_pair(client_id: str | None, client_secret: str | None) -> dict[str, str]:
    """Errors keyed by field ("client_id" / "client_secret"); empty when valid (both or neither)."""
    cid = (client_id or "").strip()
    secret = client_secret or ""
    errors: dict[str, str] = {}
    if cid and not _GUID.match(cid):
        errors["client_id"] = (
            "The Client ID is a GUID like 0a1b2c3d-1234-5678-9abc-def012345678 "
            "(Application (client) ID on the app registration's Overview page)."
        )
    if cid and not secret:
        errors["client_secret"] = "Enter the Client Secret too, or leave both Client ID and Client Secret empty."
    elif secret and not cid:
        errors["client_id"] = "Enter the Client ID too, or leave both Client ID and Client Secret empty."
    return errors
