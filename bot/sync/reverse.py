"""Marketo → Dataverse values: the reverse of `bot.sync.convert`, for the write-back.

Marketo's activity log gives every value as a string (`newValue`, `oldValue`; booleans as
true/false, null for a cleared field). `marketo_value` reads such a string as the value the forward
conversion would have produced, so a Marketo value and a Dynamics record can be compared
(`same_value`); `to_dataverse` makes the value a Dataverse PATCH body takes for the column.
Columns the write-back cannot set from a Marketo value (lookups, owners, state and status, multi-select
choices, anything unknown) are not `reversible`: they sync Dynamics → Marketo only.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from functools import cache
from typing import Any

from bot.models import EntityPlan, FieldMapping
from bot.sync.convert import (
    ConversionError,
    field_converter,
    to_bool,
    to_date,
    to_datetime,
    to_float,
    to_int,
    to_money,
    to_string,
)
from bot.sync.directions import writes_to_dynamics

_TEXT_TYPES = frozenset({"StringType", "MemoType"})
_WHOLE_TYPES = frozenset({"IntegerType", "BigIntType"})
_DECIMAL_TYPES = frozenset({"DoubleType", "DecimalType"})
_REVERSIBLE = _TEXT_TYPES | _WHOLE_TYPES | _DECIMAL_TYPES | {"MoneyType", "BooleanType", "DateTimeType",
                                                             "PicklistType"}
_BY_MARKETO_TYPE = {"boolean": to_bool, "integer": to_int, "float": to_float, "currency": to_money,
                    "date": to_date, "datetime": to_datetime}


def reversible(mapping: FieldMapping) -> bool:
    """Can a Marketo value of this field be written to its Dataverse column?"""
    return mapping.attribute_type in _REVERSIBLE


def writes_back(mapping: FieldMapping) -> bool:
    """A planned field whose Marketo values are written to Dynamics (the write-back, Sync Person to Microsoft)."""
    return writes_to_dynamics(mapping) and mapping.one_way_reason is None and reversible(mapping)


def written_back_fields(plan: EntityPlan) -> list[str]:
    """The Marketo fields to read for `person_values`."""
    return [m.marketo_name for m in plan.mappings if writes_back(m)]


def as_text(value: Any) -> str | None:
    """A Marketo lead value as its activity strings show it (booleans as true/false)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


ChoiceOptions = Callable[[], Mapping[str, Mapping[str, int]]]


def column_value(mapping: FieldMapping, text: str | None, options: ChoiceOptions) -> Any:
    """`to_dataverse`, reading the table's choice options (column → label → value) only for a choice column."""
    choices = options().get(mapping.source) if mapping.attribute_type == "PicklistType" else None
    return to_dataverse(mapping, text, choices)


def person_values(plan: EntityPlan, person: Mapping[str, Any], options: ChoiceOptions) -> dict[str, Any]:
    """The Dataverse columns to write for a Marketo person (read by REST name): every written-back field
    with a value (an empty one clears nothing). Raises ConversionError for a value that does not fit."""
    values: dict[str, Any] = {}
    read_once = cache(options)
    for mapping in plan.mappings:
        text = as_text(person.get(mapping.marketo_name))
        if writes_back(mapping) and text is not None and text.strip() != "":
            values[mapping.source] = column_value(mapping, text, read_once)
    return values


def marketo_value(mapping: FieldMapping, text: str | None) -> Any:
    """An activity's string as the Marketo value the forward conversion produces for this field."""
    if text is None:
        return None
    convert = _BY_MARKETO_TYPE.get(mapping.marketo_type, to_string)
    if mapping.attribute_type == "DateTimeType":
        convert = to_date if mapping.datetime_behavior == "DateOnly" else to_datetime
    try:
        return convert(text)
    except (TypeError, ValueError) as exc:
        raise ConversionError(f"Marketo's value of {mapping.marketo_name} is not a {mapping.marketo_type}: "
                              f"{exc}") from exc


def dynamics_as_marketo(mapping: FieldMapping, record: dict) -> Any:
    """What a Dynamics record holds in this field, as the forward sync would write it to Marketo."""
    try:
        return field_converter(mapping)(record)
    except (TypeError, ValueError, ConversionError):
        return record.get(mapping.read_name)


def same_value(left: Any, right: Any) -> bool:
    """Equal as Marketo values; numbers as numbers (1500 and 1500.0 are the same amount)."""
    if isinstance(left, int | float) and isinstance(right, int | float) and not isinstance(left, bool) \
            and not isinstance(right, bool):
        return math.isclose(float(left), float(right), rel_tol=1e-9, abs_tol=1e-6)
    return bool(left == right)


def to_dataverse(mapping: FieldMapping, text: str | None, options: Mapping[str, int] | None = None) -> Any:
    """The value a Dataverse PATCH sets in `mapping.source` for Marketo's `text` (None clears it).

    `options` maps a choice column's labels (case-insensitive) to option values; a choice value given
    as its number is taken as is. Raises ConversionError when the text does not fit the column."""
    kind = mapping.attribute_type
    if text is None or (text.strip() == "" and kind not in _TEXT_TYPES):
        return None
    try:
        if kind in _TEXT_TYPES:
            return text if text != "" else None
        if kind in _WHOLE_TYPES:
            return to_int(text)
        if kind in _DECIMAL_TYPES:
            return to_float(text)
        if kind == "MoneyType":
            return to_money(text)
        if kind == "BooleanType":
            return to_bool(text)
        if kind == "DateTimeType":
            return _datetime(text, date_only=mapping.datetime_behavior == "DateOnly")
        if kind == "PicklistType":
            return _option(mapping, text, options or {})
    except (TypeError, ValueError) as exc:
        raise ConversionError(f"Marketo's value of {mapping.marketo_name} cannot be written to "
                              f"{mapping.source}: {exc}") from exc
    raise ConversionError(f"{mapping.source} ({kind}) is not written back from Marketo.")


def _datetime(text: str, *, date_only: bool) -> str:
    if date_only:
        return str(to_date(text))
    parsed = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    moment = parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _option(mapping: FieldMapping, text: str, options: Mapping[str, int]) -> int:
    wanted = text.strip()
    if wanted.lstrip("-").isdigit():
        return int(wanted)
    folded = {label.casefold(): value for label, value in options.items()}
    if wanted.casefold() not in folded:
        raise ValueError(f"{wanted!r} is not an option of {mapping.source}")
    return folded[wanted.casefold()]
