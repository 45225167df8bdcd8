"""Tests of the shared view helpers; also home of the checks the other view tests import."""

import json

from slack_sdk.models.views import View

from bot.views.kit import (
    MAX_MESSAGE_BLOCKS,
    Message,
    ViewMetadata,
    context,
    cut,
    duration,
    escape,
    fit,
    limited_lines,
    sections,
    when,
)


def view_dict(view: View, max_blocks: int = 100) -> dict:
    """Validates (slack_sdk checks every limit in to_dict) and checks what it does not."""
    data = view.to_dict()
    assert 1 <= len(data["blocks"]) <= max_blocks
    if data["type"] == "modal":
        assert 1 <= len(data["title"]["text"]) <= 24
        assert len(data.get("private_metadata", "")) <= 3000
    assert len(json.dumps(data).encode()) < 250_000
    return data


def message_dict(message: Message) -> dict:
    data = message.to_dict()
    assert data["text"] and len(data["text"]) <= 4000
    assert 1 <= len(data["blocks"]) <= MAX_MESSAGE_BLOCKS
    assert sum(len(t) for t in _texts(data["blocks"])) < 12_000  # below msg_blocks_too_long (~13k)
    return data


def _texts(node):
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "text" and isinstance(value, str):
                yield value
            else:
                yield from _texts(value)
    elif isinstance(node, list):
        for value in node:
            yield from _texts(value)


def blocks_of(data: dict, kind: str) -> list[dict]:
    return [b for b in data["blocks"] if b["type"] == kind]


def elements(data: dict) -> list[dict]:
    return [e for b in blocks_of(data, "actions") for e in b["elements"]]


def text_of(data: dict) -> str:
    return json.dumps(data, ensure_ascii=False)


def test_cut_and_escape():
    assert cut("abc", 3) == "abc"
    assert cut("abcdef", 4) == "abc…" and len(cut("x" * 500, 75)) == 75
    assert escape("<@U1> & <!channel>") == "&lt;@U1&gt; &amp; &lt;!channel&gt;"


def test_sections_pack_lines_under_limit():
    lines = [f"line {i} " + "x" * 90 for i in range(200)]
    blocks = sections(lines, "*Heading*")
    texts = [b.to_dict()["text"]["text"] for b in blocks]
    assert all(len(t) <= 3000 for t in texts) and len(blocks) > 1
    assert "\n".join(texts) == "\n".join(["*Heading*", *lines])


def test_fit_and_limited_lines():
    blocks = [context(str(i)) for i in range(60)]
    kept = fit(blocks, 50, "rows")
    assert len(kept) == 50 and "11 more rows" in kept[-1].to_dict()["elements"][0]["text"]
    assert fit(blocks[:3], 50) == blocks[:3]
    assert limited_lines(["a", "b", "c"], 2, "fields") == ["a", "b", "…and 1 more fields."]


def test_metadata_round_trip_and_tolerance():
    meta = ViewMetadata(connection_id="c1")
    assert meta.dump() == '{"connection_id":"c1"}'
    assert ViewMetadata.parse(meta.dump()).connection_id == "c1"
    assert ViewMetadata.parse("not json") == ViewMetadata()
    assert ViewMetadata.parse(None) == ViewMetadata()


def test_formatting():
    assert when(0).startswith("<!date^0^") and "1970-01-01 00:00 UTC" in when(0)
    assert duration(5) == "5 s" and duration(125) == "2 min 05 s" and duration(3 * 3600 + 60) == "3 h 01 min"
