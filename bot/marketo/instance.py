"""Which Marketo instance this deployment writes to: the identity the Dynamics org lock is kept under."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

MUNCHKIN_ID = re.compile(r"\d{3}-[a-z]{3}-\d{3}")


def instance_id(base_url: str) -> str:
    """The Munchkin id when the host starts with one (`https://123-abc-456.mktorest.com` -> `123-ABC-456`),
    else the base URL with its scheme and host lower-cased and no trailing slash.

    One subscription reached under two spellings of its URL is then one instance."""
    parts = urlsplit(base_url.strip())
    host = (parts.hostname or "").lower()
    first_label = host.split(".", 1)[0]
    if MUNCHKIN_ID.fullmatch(first_label):
        return first_label.upper()
    netloc = f"{host}:{parts.port}" if parts.port else host
    return f"{parts.scheme.lower()}://{netloc}{parts.path.rstrip('/')}"
