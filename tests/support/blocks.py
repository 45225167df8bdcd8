"""Small Block Kit payloads for the tests of the validator and of the Slack emulator."""

from __future__ import annotations

from typing import Any


def text(value: str) -> dict[str, Any]:
    return {"type": "plain_text", "text": value}


def section(value: str = "hello") -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": value}}


def modal(title: str = "Step 1", blocks: list[dict[str, Any]] | None = None, **extra: Any) -> dict[str, Any]:
    return {"type": "modal", "title": text(title), "blocks": blocks or [section()], **extra}


def multi_select(n: int, text_len: int = 10) -> dict[str, Any]:
    """An input block holding a multi-select of `n` options whose texts are `text_len` long."""
    options = [{"text": text(f"{i:0{text_len}d}"[-text_len:]), "value": f"v{i}"} for i in range(n)]
    return {
        "type": "input", "block_id": "fields", "label": text("Fields"),
        "element": {"type": "multi_static_select", "action_id": "pick", "options": options},
    }
