"""The Block Kit validator on its own: Slack's limits, reported as Slack words them."""

from __future__ import annotations

from typing import Any

import pytest

from sandbox.blockkit import MAX_MESSAGE_BLOCKS, validate_blocks, validate_view
from tests.support import blocks as kit


@pytest.mark.parametrize(
    ("view", "pointer"),
    [
        pytest.param(kit.modal("x" * 25), "/view/title/text", id="title-25"),
        pytest.param(kit.modal(blocks=[kit.multi_select(101)], submit=kit.text("Go")),
                     "/view/blocks/0/element/options", id="101-options"),
        pytest.param(kit.modal(blocks=[kit.multi_select(3, text_len=76)], submit=kit.text("Go")),
                     "/view/blocks/0/element/options/0/text/text", id="option-text-76"),
        pytest.param(kit.modal(blocks=[kit.section()] * 101), "/view/blocks", id="101-blocks"),
        pytest.param(kit.modal(blocks=[kit.multi_select(3)]), "/view/submit", id="input-without-submit"),
        pytest.param(kit.modal(private_metadata="m" * 3001), "/view/private_metadata", id="metadata-3001"),
        pytest.param(kit.modal(blocks=[kit.section("s" * 3001)]), "/view/blocks/0/text/text", id="section-3001"),
        pytest.param(kit.modal(blocks=[{"type": "bogus"}]), "/view/blocks/0/type", id="bogus"),
        pytest.param({"type": "message"}, "/view/type", id="not-a-view"),
    ],
)
def test_invalid_views_name_the_offending_field(view: dict[str, Any], pointer: str) -> None:
    errors = validate_view(view)
    assert any(e.startswith("[ERROR] ") and e.endswith(f"[json-pointer:{pointer}]") for e in errors), errors


def test_limits_at_the_edge_are_accepted() -> None:
    view = kit.modal("x" * 24, blocks=[kit.multi_select(100, text_len=75)] + [kit.section()] * 99,
                     submit=kit.text("Go"), private_metadata="m" * 3000)
    assert validate_view(view) == []
    assert validate_blocks([kit.section()] * MAX_MESSAGE_BLOCKS, MAX_MESSAGE_BLOCKS) == []


def test_too_many_message_blocks() -> None:
    assert validate_blocks([kit.section()] * (MAX_MESSAGE_BLOCKS + 1), MAX_MESSAGE_BLOCKS) == [
        "[ERROR] no more than 50 items allowed [json-pointer:/blocks]"
    ]


def test_initial_option_must_be_one_of_the_options() -> None:
    select = {"type": "static_select", "action_id": "a", "options": [{"text": kit.text("A"), "value": "a"}],
              "initial_option": {"text": kit.text("B"), "value": "b"}}
    errors = validate_blocks([{"type": "section", "text": kit.text("pick"), "accessory": select}], MAX_MESSAGE_BLOCKS)
    assert errors == ["[ERROR] must match an option in the options list [json-pointer:/blocks/0/accessory/initial_option]"]


def test_block_ids_and_action_ids_are_unique() -> None:
    button = {"type": "button", "action_id": "go", "text": kit.text("Go")}
    blocks = [{"type": "actions", "block_id": "b", "elements": [button, button]}, {**kit.section(), "block_id": "b"}]
    assert validate_blocks(blocks, MAX_MESSAGE_BLOCKS) == [
        "[ERROR] action_id must be unique within a block [json-pointer:/blocks/0/elements/1]",
        "[ERROR] block_id must be unique [json-pointer:/blocks/1/block_id]",
    ]
