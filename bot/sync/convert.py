"""Dataverse record JSON → Marketo input, one field at a time, following the plan.

Marketo's createOrUpdate treats an explicit null as "clear this field" and an absent key as "leave
it". The initial load leaves null (or blank) values out, so it never wipes a value set in Marketo
(or by another source) where Dynamics has nothing. An incremental cycle (`send_nulls=True`) sends
a selected field that is empty in Dynamics as null, so a value cleared in Dynamics is cleared in
Marketo too — except where Marketo has no empty value (see `clearable`).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from bot.errors import BotError
from bot.models import Entity, EntityPlan, FieldMapping
from bot.sync.directions import writes_to_marketo
from bot.sync.links import link_values
from bot.sync.opportunities import carried_primary_contact

FORMATTED = "@OData.Community.Display.V1.FormattedValue"
STRING_LIMIT = 255
_STRING_TYPES = frozenset({"string", "email", "phone", "url"})
_LABEL_TYPES = frozenset({"PicklistType", "StateType", "StatusType", "MultiSelectPicklistType"})
_LOOKUP_TYPES = frozenset({"LookupType", "OwnerType", "CustomerType"})


class ConversionError(BotError):
    """A Dataverse value that does not fit its declared type (the record should be reported as failed)."""


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


FieldConverter = Callable[[dict], Any]


def _label_of(read_name: str) -> FieldConverter:
    """Choice, state, status and multi-select columns: the label Dynamics shows, not the number.
    Lookups (read as `_name_value`): the referenced record's name when Dynamics sends it, else its GUID."""
    formatted = read_name + FORMATTED

    def label(record: dict) -> str | None:
        text = record.get(formatted)
        return to_string(text if text not in (None, "") else record.get(read_name))

    return label


def _value_of(read_name: str, fn: Callable[[Any], Any]) -> FieldConverter:
    return lambda record: fn(record.get(read_name))


_BY_MARKETO_TYPE: dict[str, Callable[[Any], Any]] = {
    "boolean": to_bool,
    "integer": to_int,
    "float": to_float,
    "currency": to_money,
    "date": to_date,
    "datetime": to_datetime,
}


def field_converter(mapping: FieldMapping) -> FieldConverter:
    """record -> Marketo value for one mapping: by Dataverse type for labels/lookups, else by Marketo type.

    A mapping no converter fits yields one that raises ConversionError when used, so, as when converters
    were looked up per record, each record is reported as failed rather than the sync stopping."""
    name = mapping.read_name
    if mapping.attribute_type in _LABEL_TYPES or mapping.attribute_type in _LOOKUP_TYPES:
        return _label_of(name)
    if mapping.attribute_type == "DateTimeType":
        return _value_of(name, to_date if mapping.datetime_behavior == "DateOnly" else to_datetime)
    if mapping.marketo_type in _BY_MARKETO_TYPE:
        return _value_of(name, _BY_MARKETO_TYPE[mapping.marketo_type])
    if mapping.marketo_type in _STRING_TYPES:
        return _value_of(name, to_string)
    message = f"No converter for the Marketo type {mapping.marketo_type!r} ({mapping.source})."

    def unsupported(record: dict) -> Any:
        raise ConversionError(message)

    return unsupported


# A Marketo company is found and shown by its name: an account's name is never cleared.
ACCOUNT_NAME_FIELD = "company"


def clearable(entity: Entity, mapping: FieldMapping) -> bool:
    """May an incremental cycle send this field as null when Dynamics has it empty?

    Not a boolean: Marketo has no empty boolean (a null reads back as false, which for
    `unsubscribed` would re-subscribe a person), so it keeps its last value. Not an account's
    name (`company`), which identifies the Marketo company. The lookup field (the Dataverse id)
    is never a mapping and is always sent."""
    if mapping.marketo_type == "boolean":
        return False
    return not (entity == Entity.account and mapping.marketo_name == ACCOUNT_NAME_FIELD)


class RecordConverter:
    """The Marketo input for Dataverse records of one plan; the per-field converters are built once
    (a sync converts every record with the same plan, so building them per record is wasted work).

    `send_nulls`: empty values of `clearable` fields are sent as null (incremental cycles) instead
    of being left out (the initial load); see the module docstring. A field the admin set to
    Marketo → Dynamics only is never written to Marketo. The record's company and owner links
    (`bot.sync.links.link_values`) are added; an empty link is never sent (Marketo cannot unlink). An
    opportunity's primary contact rides along for its writer (`bot.sync.opportunities`), never to Marketo."""

    def __init__(self, plan: EntityPlan, *, send_nulls: bool = False) -> None:
        self.plan = plan
        self._id_field = plan.id_field
        self._primary_id = plan.entity.primary_id
        self._fields = [
            (mapping, mapping.marketo_name, field_converter(mapping), send_nulls and clearable(plan.entity, mapping))
            for mapping in plan.mappings if writes_to_marketo(mapping)
        ]

    def __call__(self, record: dict) -> dict:
        """Raises ConversionError naming the column when a value does not fit its type; no other
        record is affected."""
        out: dict[str, Any] = {self._id_field: record[self._primary_id]}
        for mapping, name, convert, send_null in self._fields:
            try:
                value = convert(record)
            except (TypeError, ValueError) as exc:
                raise ConversionError(
                    f"The value of {self.plan.entity.value}.{mapping.source} could not be converted to "
                    f"Marketo {mapping.marketo_type}: {exc}"
                ) from exc
            if value is not None or send_null:
                out[name] = value
        out.update(link_values(record, self.plan))
        out.update(carried_primary_contact(record, self.plan))
        return out


def convert_record(record: dict, plan: EntityPlan) -> dict:
    """One record with a converter built for it; for many records, build a RecordConverter once."""
    return RecordConverter(plan)(record)
