"""Outside text is bounded where it enters the product.

Marketo and Dataverse reasons, error messages, record values and names come from systems the bot
does not control: a 1 MB reason must not become 1 MB per record in Redis, in the failure report or
in a Slack message. Models at those boundaries declare such fields as `BoundedText`.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator

MAX_EXTERNAL_TEXT = 500


def cut(text: str, limit: int = MAX_EXTERNAL_TEXT) -> str:
    """At most `limit` characters, with an ellipsis when cut."""
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


BoundedText = Annotated[str, AfterValidator(cut)]
