"""Block Kit validation as the Slack Web API does it, apart from the emulator that applies it.

`validate_view` / `validate_blocks` return Slack-style messages (`[ERROR] ... [json-pointer:...]`),
empty when the payload is valid: every limit `slack_sdk` does not check locally.
"""

from __future__ import annotations

from typing import Any

MAX_MODAL_TITLE = 24
MAX_VIEW_BLOCKS = 100
MAX_MESSAGE_BLOCKS = 50
MAX_SELECT_OPTIONS = 100
MAX_OPTION_TEXT = 75
MAX_OPTION_VALUE = 150
MAX_PRIVATE_METADATA = 3000
MAX_SECTION_TEXT = 3000

_TEXT_TYPES = ("plain_text", "mrkdwn")
_ELEMENT_TYPES = frozenset(
    {
        "button", "checkboxes", "datepicker", "datetimepicker", "email_text_input", "external_select",
        "file_input", "image", "multi_channels_select", "multi_conversations_select",
        "multi_external_select", "multi_static_select", "multi_users_select", "number_input", "overflow",
        "plain_text_input", "radio_buttons", "rich_text_input", "static_select", "timepicker",
        "url_text_input", "users_select", "conversations_select", "channels_select", "workflow_button",
    }
)
_BLOCK_TYPES = frozenset(
    {"actions", "context", "divider", "file", "header", "image", "input", "markdown", "rich_text",
     "section", "video"}
)


def error_message(message: str, pointer: str) -> str:
    """One entry of `response_metadata.messages`, as Slack writes it."""
    return f"[ERROR] {message} [json-pointer:{pointer}]"


def _check_len(value: Any, limit: int, pointer: str, errors: list[str]) -> None:
    if isinstance(value, str) and len(value) > limit:
        errors.append(error_message(f"must be less than {limit + 1} characters", pointer))


def _check_text(
    obj: Any, pointer: str, limit: int, errors: list[str], *, plain_only: bool = False, required: bool = True
) -> None:
    if obj is None:
        if required:
            errors.append(error_message("must provide an object", pointer))
        return
    allowed = ("plain_text",) if plain_only else _TEXT_TYPES
    if not isinstance(obj, dict) or obj.get("type") not in allowed or not isinstance(obj.get("text"), str):
        errors.append(error_message(f"must be a text object of type {' or '.join(allowed)}", pointer))
        return
    if not obj["text"]:
        errors.append(error_message("must be more than 0 characters", f"{pointer}/text"))
    _check_len(obj["text"], limit, f"{pointer}/text", errors)


def _check_count(items: Any, limit: int, pointer: str, errors: list[str], *, minimum: int = 0) -> list[Any]:
    if items is None:
        items = []
    if not isinstance(items, list):
        errors.append(error_message("must be an array", pointer))
        return []
    if len(items) > limit:
        errors.append(error_message(f"no more than {limit} items allowed", pointer))
    elif len(items) < minimum:
        errors.append(error_message(f"must provide at least {minimum} items", pointer))
    return items


def _check_option(option: Any, pointer: str, errors: list[str]) -> None:
    if not isinstance(option, dict):
        errors.append(error_message("must be an option object", pointer))
        return
    _check_text(option.get("text"), f"{pointer}/text", MAX_OPTION_TEXT, errors)
    if not isinstance(option.get("value"), str):
        errors.append(error_message("must provide a string", f"{pointer}/value"))
    _check_len(option.get("value"), MAX_OPTION_VALUE, f"{pointer}/value", errors)
    _check_text(option.get("description"), f"{pointer}/description", MAX_OPTION_TEXT, errors, required=False)


def _check_options(element: dict[str, Any], pointer: str, errors: list[str], limit: int) -> None:
    """Options or option groups, and that the initial selection is one of them."""
    values: set[str] = set()
    if "option_groups" in element:
        groups = _check_count(element["option_groups"], MAX_SELECT_OPTIONS, f"{pointer}/option_groups", errors)
        for g, group in enumerate(groups):
            gp = f"{pointer}/option_groups/{g}"
            if not isinstance(group, dict):
                errors.append(error_message("must be an option group", gp))
                continue
            _check_text(group.get("label"), f"{gp}/label", MAX_OPTION_TEXT, errors, plain_only=True)
            for i, option in enumerate(_check_count(group.get("options"), limit, f"{gp}/options", errors)):
                _check_option(option, f"{gp}/options/{i}", errors)
                if isinstance(option, dict):
                    values.add(option.get("value"))
    else:
        options = _check_count(element.get("options"), limit, f"{pointer}/options", errors, minimum=1)
        for i, option in enumerate(options):
            _check_option(option, f"{pointer}/options/{i}", errors)
            if isinstance(option, dict):
                values.add(option.get("value"))
    initial = element.get("initial_options") or ([element["initial_option"]] if element.get("initial_option") else [])
    for option in initial:
        if not isinstance(option, dict) or option.get("value") not in values:
            errors.append(error_message("must match an option in the options list", f"{pointer}/initial_option"))


def _check_element(element: Any, pointer: str, errors: list[str]) -> str | None:
    """Validate one interactive element; return its action_id."""
    if not isinstance(element, dict) or element.get("type") not in _ELEMENT_TYPES:
        errors.append(error_message("must be a valid element type", f"{pointer}/type"))
        return None
    kind = element["type"]
    _check_len(element.get("action_id"), 255, f"{pointer}/action_id", errors)
    _check_text(element.get("placeholder"), f"{pointer}/placeholder", 150, errors, plain_only=True, required=False)
    if "confirm" in element:
        confirm, cp = element["confirm"], f"{pointer}/confirm"
        if not isinstance(confirm, dict):
            errors.append(error_message("must be a confirm object", cp))
        else:
            _check_text(confirm.get("title"), f"{cp}/title", 100, errors, plain_only=True)
            _check_text(confirm.get("text"), f"{cp}/text", 300, errors)
            _check_text(confirm.get("confirm"), f"{cp}/confirm", 30, errors, plain_only=True)
            _check_text(confirm.get("deny"), f"{cp}/deny", 30, errors, plain_only=True)
    if kind == "button":
        _check_text(element.get("text"), f"{pointer}/text", 75, errors, plain_only=True)
        _check_len(element.get("value"), 2000, f"{pointer}/value", errors)
        _check_len(element.get("url"), 3000, f"{pointer}/url", errors)
        if element.get("style") not in (None, "primary", "danger"):
            errors.append(error_message("must be primary or danger", f"{pointer}/style"))
    elif kind in ("static_select", "multi_static_select"):
        _check_options(element, pointer, errors, MAX_SELECT_OPTIONS)
    elif kind in ("checkboxes", "radio_buttons"):
        _check_options(element, pointer, errors, 10)
    elif kind == "overflow":
        _check_options(element, pointer, errors, 5)
    elif kind == "plain_text_input":
        for key in ("max_length", "min_length"):
            if isinstance(element.get(key), int) and not 0 <= element[key] <= 3000:
                errors.append(error_message("must be between 0 and 3000", f"{pointer}/{key}"))
        _check_len(element.get("initial_value"), 3000, f"{pointer}/initial_value", errors)
    limit = element.get("max_selected_items", 1)
    if kind.startswith("multi_") and (not isinstance(limit, int) or limit < 1):
        errors.append(error_message("must be at least 1", f"{pointer}/max_selected_items"))
    return element.get("action_id")


def _check_block(block: Any, pointer: str, errors: list[str]) -> None:
    if not isinstance(block, dict) or block.get("type") not in _BLOCK_TYPES:
        errors.append(error_message("must be a valid block type", f"{pointer}/type"))
        return
    kind = block["type"]
    _check_len(block.get("block_id"), 255, f"{pointer}/block_id", errors)
    if kind == "section":
        if "text" not in block and "fields" not in block:
            errors.append(error_message("must provide text or fields", pointer))
        _check_text(block.get("text"), f"{pointer}/text", MAX_SECTION_TEXT, errors, required=False)
        for i, item in enumerate(_check_count(block.get("fields"), 10, f"{pointer}/fields", errors)):
            _check_text(item, f"{pointer}/fields/{i}", 2000, errors)
        if "accessory" in block:
            _check_element(block["accessory"], f"{pointer}/accessory", errors)
    elif kind == "header":
        _check_text(block.get("text"), f"{pointer}/text", 150, errors, plain_only=True)
    elif kind == "actions":
        action_ids: list[str] = []
        for i, element in enumerate(_check_count(block.get("elements"), 25, f"{pointer}/elements", errors, minimum=1)):
            action_id = _check_element(element, f"{pointer}/elements/{i}", errors)
            if action_id is not None and action_id in action_ids:
                errors.append(error_message("action_id must be unique within a block", f"{pointer}/elements/{i}"))
            action_ids.append(action_id)
    elif kind == "context":
        for i, item in enumerate(_check_count(block.get("elements"), 10, f"{pointer}/elements", errors, minimum=1)):
            if not isinstance(item, dict) or item.get("type") not in (*_TEXT_TYPES, "image"):
                errors.append(error_message("must be a text or image element", f"{pointer}/elements/{i}"))
            elif item["type"] != "image":
                _check_text(item, f"{pointer}/elements/{i}", 3000, errors)
    elif kind == "input":
        _check_text(block.get("label"), f"{pointer}/label", 2000, errors, plain_only=True)
        _check_text(block.get("hint"), f"{pointer}/hint", 2000, errors, plain_only=True, required=False)
        _check_element(block.get("element"), f"{pointer}/element", errors)
    elif kind == "image":
        _check_len(block.get("image_url"), 3000, f"{pointer}/image_url", errors)
        _check_len(block.get("alt_text"), 2000, f"{pointer}/alt_text", errors)
    elif kind == "markdown":
        _check_len(block.get("text"), 12_000, f"{pointer}/text", errors)


def validate_blocks(blocks: Any, limit: int, pointer: str = "/blocks") -> list[str]:
    """Slack-style error messages (`[ERROR] ... [json-pointer:...]`) for a list of blocks."""
    errors: list[str] = []
    seen: set[str] = set()
    for i, block in enumerate(_check_count(blocks, limit, pointer, errors)):
        _check_block(block, f"{pointer}/{i}", errors)
        block_id = block.get("block_id") if isinstance(block, dict) else None
        if block_id is not None:
            if block_id in seen:
                errors.append(error_message("block_id must be unique", f"{pointer}/{i}/block_id"))
            seen.add(block_id)
    return errors


def validate_view(view: Any) -> list[str]:
    """Slack-style error messages for a modal or Home tab view (size is checked separately)."""
    if not isinstance(view, dict) or view.get("type") not in ("modal", "home"):
        return [error_message("must be a modal or home view", "/view/type")]
    errors = validate_blocks(view.get("blocks"), MAX_VIEW_BLOCKS, "/view/blocks")
    if view["type"] == "modal":
        _check_text(view.get("title"), "/view/title", MAX_MODAL_TITLE, errors, plain_only=True)
        _check_text(view.get("close"), "/view/close", MAX_MODAL_TITLE, errors, plain_only=True, required=False)
        _check_text(view.get("submit"), "/view/submit", MAX_MODAL_TITLE, errors, plain_only=True, required=False)
        has_input = any(isinstance(b, dict) and b.get("type") == "input" for b in view.get("blocks") or [])
        if has_input and not view.get("submit"):
            errors.append(error_message("must provide submit when there are input blocks", "/view/submit"))
    _check_len(view.get("private_metadata"), MAX_PRIVATE_METADATA, "/view/private_metadata", errors)
    _check_len(view.get("callback_id"), 255, "/view/callback_id", errors)
    _check_len(view.get("external_id"), 255, "/view/external_id", errors)
    return errors
