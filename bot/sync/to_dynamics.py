"""A Marketo person's values → Dataverse column values, for the fields that sync Marketo → Dynamics.

Only columns whose value can be written as Marketo holds it: text, numbers, money, yes/no and dates.
Choice, status and lookup columns sync to Marketo as their label (or the referenced record's name),
which is not a value Dataverse accepts, so they are left out; so are values that do not fit the
column's type (a person's "abc" in an integer field), which the caller reports.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bot.models import EntityPlan, FieldMapping
from bot.sync.convert import to_bool, to_date, to_datetime, to_float, to_int, to_money
from bot.sync.directions import writes_to_dynamics

_NOT_BY_VALUE = frozenset({"PicklistType", "StateType", "StatusType", "MultiSelectPicklistType", "LookupType",
                           "OwnerType", "CustomerType", "UniqueidentifierType"})
_BY_MARKETO_TYPE: dict[str, Callable[[Any], Any]] = {
    "boolean": to_bool, "integer": to_int, "float": to_float, "currency": to_money,
}


class ValueMismatch(ValueError):
    """A Marketo value that does not fit its Dataverse column."""


def writable(mapping: FieldMapping) -> bool:
    """Does this field sync Marketo → Dynamics with a value Dataverse takes as it is?"""
    return writes_to_dynamics(mapping) and mapping.attribute_type not in _NOT_BY_VALUE


def _convert(mapping: FieldMapping, value: Any) -> Any:
    if mapping.attribute_type == "DateTimeType":
        return (to_date if mapping.datetime_behavior == "DateOnly" else to_datetime)(value)
    convert = _BY_MARKETO_TYPE.get(mapping.marketo_type)
    if convert is not None:
        return convert(value)
    text = str(value).strip()
    return text or None


def dynamics_values(plan: EntityPlan, person: dict[str, Any]) -> dict[str, Any]:
    """The Dataverse columns to write for `person` (a Marketo lead read by REST name): every writable
    field with a value. Raises ValueMismatch naming the first field whose value does not fit."""
    values: dict[str, Any] = {}
    for mapping in plan.mappings:
        raw = person.get(mapping.marketo_name)
        if not writable(mapping) or raw is None or raw == "":
            continue
        try:
            converted = _convert(mapping, raw)
        except (TypeError, ValueError) as exc:
            raise ValueMismatch(f"Marketo's {mapping.marketo_name} ({raw!r}) does not fit Dynamics' "
                                f"{plan.entity.value}.{mapping.source}") from exc
        if converted is not None:
            values[mapping.source] = converted
    return values


def marketo_fields(plan: EntityPlan) -> list[str]:
    """The Marketo fields to read for `dynamics_values`."""
    return [m.marketo_name for m in plan.mappings if writable(m)]
