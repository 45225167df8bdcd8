"""Small shared helpers for the view builders: text limits, escaping, formatting, metadata.

Slack rejects a whole view or message when one limit is exceeded, so every builder goes
through these helpers, which cut text and block counts to Slack's documented limits.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel
from slack_sdk.models.blocks import (
    Block,
    ButtonElement,
    ConfirmObject,
    ContextBlock,
    MarkdownTextObject,
    Option,
    PlainTextObject,
    SectionBlock,
)
from slack_sdk.models.views import View

from bot.bounded_text import cut
from bot.models import Entity

MAX_MESSAGE_BLOCKS = 50
MAX_VIEW_BLOCKS = 100
MAX_TITLE = 24
MAX_BUTTON_TEXT = 75
MAX_OPTION_TEXT = 75
MAX_OPTIONS = 100
MAX_SECTION_TEXT = 3000
MAX_CONTEXT_TEXT = 2000  # per context element; kept well under Slack's per-message total
MAX_MESSAGE_TEXT = 3000  # the notification `text`, far below chat.update's 4000

_USER_ID = re.compile(r"[UW][A-Z0-9]+")

ENTITY_PLURAL: dict[str, str] = {Entity.lead: "Leads", Entity.contact: "Contacts", Entity.account: "Accounts",
                                 Entity.opportunity: "Opportunities"}


@dataclass
class Message:
    """A chat message: `text` is the notification/fallback line, `blocks` the Block Kit body."""

    text: str
    blocks: list[Block] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Keyword arguments for chat.postMessage / chat.update (validates every block)."""
        return {"text": self.text, "blocks": [b.to_dict() for b in self.blocks]}


class ViewMetadata(BaseModel):
    """What a modal's `private_metadata` carries: ids only, never secrets."""

    connection_id: str | None = None
    approval_id: str | None = None

    def dump(self) -> str:
        return self.model_dump_json(exclude_none=True)

    @classmethod
    def parse(cls, private_metadata: str | None) -> ViewMetadata:
        """Tolerant: empty or malformed metadata (an old view) gives an empty ViewMetadata."""
        try:
            return cls.model_validate_json(private_metadata or "{}")
        except ValueError:
            return cls()


def escape(text: str) -> str:
    """Escape outside text for mrkdwn: the one helper for every piece of user-, Dynamics- or
    Marketo-supplied text in a message, DM or view. `&`, `<` and `>` are mrkdwn's control
    characters, so `<!channel>`, `<@U…>` and `<https://evil|text>` show as the text they are."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def mention(user: str) -> str:
    """`<@U…>` for a Slack user id; anything else (a system actor, a malformed id) as escaped text."""
    return f"<@{user}>" if _USER_ID.fullmatch(user) else escape(user)


def quote(text: str) -> str:
    """Outside text as a mrkdwn block quote, every line of it."""
    return "\n".join(f">{line}" for line in escape(text).splitlines() or [""])


def number(n: int | float) -> str:
    return f"{n:,.0f}"


def when(ts: float) -> str:
    """A timestamp Slack shows in the reader's own time zone (UTC text as fallback)."""
    fallback = datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"<!date^{int(ts)}^{{date_short_pretty}} at {{time}}|{fallback}>"


def duration(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    if minutes:
        return f"{minutes} min {secs:02d} s"
    return f"{secs} s"


def option(text: str, value: str) -> Option:
    return Option(text=PlainTextObject(text=cut(text, MAX_OPTION_TEXT)), value=value)


def section(text: str) -> SectionBlock:
    return SectionBlock(text=MarkdownTextObject(text=cut(text, MAX_SECTION_TEXT)))


def sections(lines: Sequence[str], heading: str = "") -> list[Block]:
    """Lines packed into as few sections as Slack's 3000-character limit allows (no line is split)."""
    chunks: list[str] = []
    current = heading
    for line in lines:
        line = cut(line, MAX_SECTION_TEXT - 1)
        if current and len(current) + 1 + len(line) > MAX_SECTION_TEXT:
            chunks.append(current)
            current = line
        else:
            current = f"{current}\n{line}" if current else line
    if current:
        chunks.append(current)
    return [section(chunk) for chunk in chunks]


def context(*texts: str) -> ContextBlock:
    return ContextBlock(elements=[MarkdownTextObject(text=cut(t, MAX_CONTEXT_TEXT)) for t in texts[:10]])


def confirm(title: str, text: str, yes: str, no: str = "Cancel", *, danger: bool = False) -> ConfirmObject:
    return ConfirmObject(
        title=cut(title, 100), text=MarkdownTextObject(text=cut(text, 300)),
        confirm=cut(yes, 30), deny=cut(no, 30), style="danger" if danger else None,
    )


def button(
    text: str, action_id: str, value: str | None = None, *, style: str | None = None,
    confirm_with: ConfirmObject | None = None,
) -> ButtonElement:
    return ButtonElement(text=cut(text, MAX_BUTTON_TEXT), action_id=action_id, value=value, style=style,
                         confirm=confirm_with)


def fit(blocks: list[Block], limit: int, what: str = "items") -> list[Block]:
    """At most `limit` blocks; when cut, the last one says how many were left out."""
    if len(blocks) <= limit:
        return blocks
    kept = blocks[: limit - 1]
    return [*kept, context(f"…and {len(blocks) - len(kept)} more {what} not shown.")]


def limited_lines(lines: Iterable[str], limit: int, what: str) -> list[str]:
    """The first `limit` lines, plus a line counting the rest."""
    lines = list(lines)
    if len(lines) <= limit:
        return lines
    return [*lines[:limit], f"…and {len(lines) - limit} more {what}."]


def modal(
    title: str, callback_id: str, blocks: list[Block], *, submit: str | None = None, close: str = "Cancel",
    metadata: ViewMetadata | None = None, external_id: str | None = None,
) -> View:
    return View(
        type="modal", callback_id=callback_id, title=cut(title, MAX_TITLE),
        submit=cut(submit, MAX_TITLE) if submit else None, close=cut(close, MAX_TITLE),
        blocks=fit(blocks, MAX_VIEW_BLOCKS), private_metadata=metadata.dump() if metadata else None,
        external_id=external_id,
    )
