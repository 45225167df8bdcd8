"""Render Block Kit views and messages as plain text, for the demo's transcript."""

from __future__ import annotations

import re
import textwrap
from typing import Any

WIDTH = 96


def _text(obj: Any) -> str:
    if isinstance(obj, dict):
        return str(obj.get("text", ""))
    return str(obj or "")


EMOJI = {
    ":white_check_mark:": "✅", ":x:": "❌", ":warning:": "⚠️", ":hourglass_flowing_sand:": "⏳",
    ":hourglass:": "⌛", ":tada:": "🎉", ":raised_hand:": "✋", ":lock:": "🔒", ":outbox_tray:": "📤",
    ":information_source:": "ℹ️", ":busts_in_silhouette:": "👥", ":arrows_counterclockwise:": "🔄",
    ":no_entry_sign:": "🚫", ":double_vertical_bar:": "⏸", ":heavy_minus_sign:": "➖",
}


def _mrkdwn(text: str) -> str:
    text = re.sub(r":[a-z_]+:", lambda m: EMOJI.get(m.group(0).lower(), m.group(0)), text, flags=re.IGNORECASE)
    text = re.sub(r"<@(\w+)>", r"@\1", text)
    text = re.sub(r"<#(\w+)(\|[^>]*)?>", r"#\1", text)
    text = re.sub(r"<([^|>]+)\|([^>]+)>", r"\2", text)
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def _wrap(text: str, indent: str) -> list[str]:
    lines: list[str] = []
    for raw in _mrkdwn(text).splitlines() or [""]:
        lines += textwrap.wrap(raw, WIDTH - len(indent), initial_indent=indent, subsequent_indent=indent + "  ") or [indent]
    return lines


def _element(element: dict[str, Any]) -> str:
    kind = element.get("type", "")
    if kind == "button":
        return f"[ {_text(element.get('text'))} ]"
    if "select" in kind:
        chosen = element.get("initial_options") or ([element["initial_option"]] if element.get("initial_option") else [])
        picked = ", ".join(_text(option.get("text")) for option in chosen)
        return f"<{_text(element.get('placeholder')) or 'select'}>" + (f" selected: {picked}" if picked else "")
    if kind in ("plain_text_input", "email_text_input", "url_text_input", "number_input"):
        value = element.get("initial_value")
        return f"[____{value or ''}____]"
    return f"<{kind}>"


def render_blocks(blocks: list[dict[str, Any]], indent: str = "  ") -> list[str]:
    lines: list[str] = []
    for block in blocks:
        kind = block.get("type")
        if kind == "header":
            lines += _wrap(_text(block.get("text")).upper(), indent)
        elif kind == "section":
            if block.get("text"):
                lines += _wrap(_text(block["text"]), indent)
            for field in block.get("fields") or []:
                lines += _wrap(_text(field), indent + "  ")
            if block.get("accessory"):
                lines.append(indent + "  " + _element(block["accessory"]))
        elif kind == "context":
            lines += _wrap(" ".join(_text(e) for e in block.get("elements", [])), indent + "  ")
        elif kind == "divider":
            lines.append(indent + "-" * 40)
        elif kind == "actions":
            lines.append(indent + "  ".join(_element(e) for e in block.get("elements", [])))
        elif kind == "input":
            optional = " (optional)" if block.get("optional") else ""
            lines.append(f"{indent}{_text(block.get('label'))}{optional}: {_element(block.get('element', {}))}")
            if block.get("hint"):
                lines += _wrap(_text(block["hint"]), indent + "    ")
    return lines


def render_view(view: dict[str, Any]) -> str:
    title = _text(view.get("title"))
    submit = _text(view.get("submit"))
    lines = [f"┌─ modal: {title} " + "─" * max(4, WIDTH - 12 - len(title))]
    lines += render_blocks(view.get("blocks", []), "│ ")
    if submit:
        lines.append(f"│ {' ' * 50}[ {_text(view.get('close')) or 'Cancel'} ]  [ {submit} ]")
    lines.append("└" + "─" * (WIDTH - 1))
    return "\n".join(lines)


def render_message(where: str, text: str, blocks: list[dict[str, Any]] | None) -> str:
    lines = [f"┌─ message in {where} " + "─" * max(4, WIDTH - 17 - len(where))]
    lines += render_blocks(blocks, "│ ") if blocks else _wrap(text, "│ ")
    lines.append("└" + "─" * (WIDTH - 1))
    return "\n".join(lines)
