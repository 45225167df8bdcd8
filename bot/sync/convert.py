"""Dataverse record JSON → Marketo input, one field at a time, following the plan.

A null (or blank) value is left out of the output rather than sent as null: Marketo's
createOrUpdate treats a null as "clear this field", which would wipe a value set in Marketo
(or by another source) whenever Dynamics has nothing. An absent key leaves Marketo's value alone.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from bot.errors import BotError
from bot.models import EntityPlan, FieldMapping

FORMATTED = "@OData.Community.Display.V1.FormattedValue"
STRING_LIMIT = 255
_STRING_TYPES = frozenset({"string", "email", "phone", "url"})
_LABEL_TYPES = frozenset({"PicklistType", "StateType", "StatusType", "MultiSelectPicklistType"})
_LOOKUP_TYPES = frozenset({"LookupType", "OwnerType", "CustomerType"})


class ConversionError(BotError):
    """A Dataverse value that does not fit its declared type (the record should be reported as failed)."""


def formatted_value(record: dict, prop: str) -> Any:
    return record.get(prop + FORMATTED)


def to_label(record: dict, prop: str) -> str | None:
    """Choice, state, status and multi-select columns: the label Dynamics shows, not the number."""
    label = formatted_value(record, prop)
    raw = record.get(prop)
    return to_string(label if label not in (None, "") else raw)


def to_lookup(record: dict, prop: str) -> str | None:
    """Lookups (read as `_name_value`): the referenced record's name when Dynamics sends it, else its GUID."""
    return to_label(record, prop)


def to_string(value: Any, limit: int = STRING_LIMIT) -> str | None:
    """Trimmed and cut to Marketo's string length; blank becomes None."""
    if value is None:
        return None
    text = str(value).strip()[:limit]
    return text or None


def to_bool(value: Any) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return bool(value)
    text = str(value).strip().lower()
    if text in {"true", "1", "yes"}:
        return True
    if text in {"false", "0", "no"}:
        return False
    if not text:
        return None
    raise ValueError(f"not a boolean: {value!r}")


def to_int(value: Any) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    number = float(value)
    if not number.is_integer():
        raise ValueError(f"not a whole number: {value!r}")
    return int(number)


def to_float(value: Any) -> float | None:
    return None if value is None or value == "" else float(value)


def to_money(value: Any) -> float | None:
    number = to_float(value)
    return None if number is None else round(number, 2)


def _parse_datetime(value: Any) -> datetime | None:
    if value is None or value == "":
        return None
    parsed = datetime.fromisoformat(str(value).strip())
    # Dataverse sends UTC with `Z`; a naive value (TimeZoneIndependent) is taken as UTC too.
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def to_date(value: Any) -> str | None:
    """DateOnly columns: `YYYY-MM-DD`, the calendar date Dynamics holds (no time-zone shift)."""
    parsed = _parse_datetime(value)
    return None if parsed is None else parsed.date().isoformat()


def to_datetime(value: Any) -> str | None:
    """ISO 8601 with an explicit offset, e.g. `2025-03-01T10:00:00+00:00`."""
    parsed = _parse_datetime(value)
    return None if parsed is None else parsed.astimezone(UTC).isoformat()


Converter = Callable[[dict, FieldMapping], Any]


def _raw(fn: Callable[[Any], Any]) -> Converter:
    return lambda record, m: fn(record.get(m.read_name))


_BY_MARKETO_TYPE: dict[str, Converter] = {
    "boolean": _raw(to_bool),
    "integer": _raw(to_int),
    "float": _raw(to_float),
    "currency": _raw(to_money),
    "date": _raw(to_date),
    "datetime": _raw(to_datetime),
}


def converter_for(mapping: FieldMapping) -> Converter:
    """The converter for one mapping: by Dataverse type for labels/lookups, else by Marketo type."""
    if mapping.attribute_type in _LABEL_TYPES:
        return lambda record, m: to_label(record, m.read_name)
    if mapping.attribute_type in _LOOKUP_TYPES:
        return lambda record, m: to_lookup(record, m.read_name)
    if mapping.attribute_type == "DateTimeType":
        return _BY_MARKETO_TYPE["date" if mapping.datetime_behavior == "DateOnly" else "datetime"]
    if mapping.marketo_type in _BY_MARKETO_TYPE:
        return _BY_MARKETO_TYPE[mapping.marketo_type]
    if mapping.marketo_type in _STRING_TYPES:
        return _raw(to_string)
    raise ConversionError(f"No converter for the Marketo type {mapping.marketo_type!r} ({mapping.source}).")


def convert_record(record: dict, plan: EntityPlan) -> dict:
    """The Marketo input for one Dataverse record: the id field holds the record's GUID.

    Null and blank values are omitted (see the module docstring). Raises ConversionError naming the
    column when a value does not fit its type; no other record is affected.
    """
    out: dict[str, Any] = {plan.id_field: record[plan.entity.primary_id]}
    for mapping in plan.mappings:
        try:
            value = converter_for(mapping)(record, mapping)
        except (TypeError, ValueError) as exc:
            raise ConversionError(
                f"The value of {plan.entity.value}.{mapping.source} could not be converted to "
                f"Marketo {mapping.marketo_type}: {exc}"
            ) from exc
        if value is not None:
            out[mapping.marketo_name] = value
    return out
