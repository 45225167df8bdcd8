"""Dataverse writes for the emulator: what a create or update body may hold, and `$batch` bodies.

Validation follows the Web API: an unknown column or a value of the wrong type is refused before
anything is stored; a string longer than the column's `MaxLength` and a null in a `SystemRequired`
column are refused with `0x80040203` (InvalidArgument). `ApplicationRequired` ("Business Required")
is not enforced by the server, as in Dataverse. Lookups are written as `<navigation>@odata.bind`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from email.parser import BytesParser
from email.policy import HTTP
from typing import TYPE_CHECKING, Any

from sandbox.odata import ODataError

if TYPE_CHECKING:
    from sandbox.dynamics import AttrSpec

INVALID_ARGUMENT = "0x80040203"
SYNTAX = "0x80060888"
NOT_FOUND = "0x80040217"
BATCH_LIMIT = 1000
LOOKUP_TYPES = {"OwnerType", "LookupType", "CustomerType"}
# Set by the server, never by a caller: a body that holds them keeps the server's values.
SYSTEM_COLUMNS = {"createdon", "modifiedon", "createdby", "modifiedby", "fullname", "merged"}

_REQUIRED = {
    ("lead", "lastname"): "ApplicationRequired", ("lead", "subject"): "ApplicationRequired",
    ("contact", "lastname"): "ApplicationRequired", ("account", "name"): "ApplicationRequired",
}
_MAX_LENGTH = {
    "firstname": 50, "lastname": 50, "subject": 300, "fullname": 160, "jobtitle": 100, "emailaddress1": 100,
    "telephone1": 50, "websiteurl": 200, "address1_city": 80, "companyname": 100, "name": 160,
    "owneridname": 100, "owneridyominame": 100, "parentcustomeridname": 160, "new_internalnote": 2000,
}
_NUMERIC = {"IntegerType": int, "PicklistType": int, "StateType": int, "MoneyType": (int, float), "DecimalType": (int, float),
            "DoubleType": (int, float), "BigIntType": int}
_EDM = {"StringType": "Edm.String", "MemoType": "Edm.String", "BooleanType": "Edm.Boolean",
        "IntegerType": "Edm.Int32", "PicklistType": "Edm.Int32", "MoneyType": "Edm.Decimal",
        "DateTimeType": "Edm.DateTimeOffset", "UniqueidentifierType": "Edm.Guid"}
_BIND = re.compile(r"/?(\w+)\(([0-9a-fA-F-]{36})\)")
_REASONS = {200: "OK", 201: "Created", 204: "No Content", 400: "Bad Request", 404: "Not Found",
            412: "Precondition Failed", 429: "Too Many Requests"}
_GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def required_level(entity: str, spec: AttrSpec) -> str:
    """`RequiredLevel.Value` of a column: the owner and the primary key are SystemRequired."""
    if spec.logical_name in {"ownerid", f"{entity}id"}:
        return "SystemRequired"
    return _REQUIRED.get((entity, spec.logical_name), "None")


def max_length(spec: AttrSpec) -> int | None:
    if spec.type_name == "StringType":
        return _MAX_LENGTH.get(spec.logical_name, 100)
    if spec.type_name == "MemoType":
        return _MAX_LENGTH.get(spec.logical_name, 2000)
    return None


def _convert(entity: str, spec: AttrSpec, value: Any) -> Any:
    """`value` checked against the column's type, or the error Dataverse answers."""
    if value is None:
        return None
    kind = spec.type_name
    expected = _NUMERIC.get(kind)
    literal = repr(value) if not isinstance(value, str) else f"'{value}'"
    wrong = ODataError(400, SYNTAX, f"Cannot convert the literal {literal} to the expected type "
                                    f"'{_EDM.get(kind, 'Edm.String')}' of the property '{spec.logical_name}'.")
    if kind in {"StringType", "MemoType"}:
        if not isinstance(value, str):
            raise wrong
        limit = max_length(spec)
        if limit is not None and len(value) > limit:
            raise ODataError(400, INVALID_ARGUMENT, f"A validation error occurred. The length of the "
                             f"'{spec.logical_name}' attribute of the '{entity}' entity exceeded the maximum "
                             f"allowed length of '{limit}'.")
        return value
    if kind == "BooleanType":
        if not isinstance(value, bool):
            raise wrong
        return value
    if expected is not None:
        if isinstance(value, bool) or not isinstance(value, expected):
            raise wrong
        return value
    if kind == "DateTimeType":
        try:
            datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            raise wrong from None
        return value
    if kind == "UniqueidentifierType":
        if not isinstance(value, str) or not _GUID.fullmatch(value):
            raise wrong
        return value.lower()
    raise ODataError(400, INVALID_ARGUMENT, f"The attribute '{spec.logical_name}' of the '{entity}' entity "
                                            "cannot be set.")


def _bound(entity: str, attributes: dict[str, AttrSpec], navigation: str, value: Any) -> tuple[str, str | None]:
    """`ownerid@odata.bind: "/systemusers(<id>)"` → ("ownerid", id); Customer columns are named
    `<column>_account` / `<column>_contact`."""
    column = navigation if navigation in attributes else navigation.rsplit("_", 1)[0]
    spec = attributes.get(column)
    if spec is None or spec.type_name not in LOOKUP_TYPES:
        raise ODataError(400, SYNTAX, f"An undeclared property '{navigation}' which only has property "
                                      "annotations in the payload but no property value was found in the payload.")
    if value is None:
        return column, None
    match = _BIND.fullmatch(str(value))
    if match is None:
        raise ODataError(400, SYNTAX, f"The value '{value}' of '{navigation}@odata.bind' is not a valid "
                                      "entity reference.")
    return column, match.group(2).lower()


def validated_values(entity: str, attributes: dict[str, AttrSpec], body: dict[str, Any]) -> dict[str, Any]:
    """The columns a create or update body sets, by logical name, after Dataverse's checks."""
    values: dict[str, Any] = {}
    for key, value in body.items():
        if key.startswith("@odata."):
            continue
        if key.endswith("@odata.bind"):
            column, target = _bound(entity, attributes, key.removesuffix("@odata.bind"), value)
            values[column] = target
            continue
        spec = attributes.get(key)
        if spec is None or spec.attribute_of is not None:
            raise ODataError(400, SYNTAX, f"Invalid property '{key}' was found in entity "
                                          f"'Microsoft.Dynamics.CRM.{entity}'.")
        if key in SYSTEM_COLUMNS:
            continue
        if spec.type_name in LOOKUP_TYPES:
            raise ODataError(400, SYNTAX, f"The property '{key}' is a lookup: set it with '{key}@odata.bind'.")
        values[key] = _convert(entity, spec, value)
    for name, value in values.items():
        if value is None and required_level(entity, attributes[name]) == "SystemRequired":
            raise ODataError(400, INVALID_ARGUMENT, f"The attribute '{name}' of the '{entity}' entity is "
                                                    "SystemRequired and cannot be set to null.")
    return values


# -- $batch -----------------------------------------------------------------------------------------


@dataclass
class BatchPart:
    """One request of a batch; `changeset` is the change set it belongs to (None: on its own)."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    content_id: str | None
    changeset: str | None


def _parts(content_type: str, body: bytes) -> list[Any]:
    message = BytesParser(policy=HTTP).parsebytes(f"Content-Type: {content_type}\r\n\r\n".encode() + body)
    if not message.is_multipart():
        raise ODataError(400, SYNTAX, "The batch request must be a multipart/mixed body.")
    return list(message.iter_parts())


def _request(part: Any, changeset: str | None) -> BatchPart:
    payload = part.get_payload(decode=True) or b""
    head, _, rest = payload.replace(b"\r\n", b"\n").partition(b"\n\n")
    lines = head.decode().split("\n")
    method, target, *_ = lines[0].split(" ")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
    return BatchPart(method.upper(), target, headers, rest.strip(), part.get("Content-ID"), changeset)


def batch_parts(content_type: str, body: bytes) -> list[BatchPart]:
    """The requests of a `$batch` body in order (change sets flattened); refuses nesting and more
    than 1000 requests."""
    out: list[BatchPart] = []
    for index, part in enumerate(_parts(content_type, body)):
        if part.get_content_type() == "multipart/mixed":
            changeset = f"changeset-{index}"
            for inner in part.iter_parts():
                if inner.get_content_type() == "multipart/mixed":
                    raise ODataError(400, SYNTAX, "Nested change sets are not supported.")
                out.append(_request(inner, changeset))
        else:
            out.append(_request(part, None))
    if len(out) > BATCH_LIMIT:
        raise ODataError(400, SYNTAX, f"The batch holds {len(out)} requests; the limit is {BATCH_LIMIT}.")
    return out


def batch_response(boundary: str, responses: Iterable[tuple[str | None, int, dict[str, str], bytes]]) -> bytes:
    """A multipart/mixed `$batch` answer: one `application/http` part per (content id, status,
    headers, body)."""
    chunks: list[bytes] = []
    for content_id, status, headers, body in responses:
        head = [f"--{boundary}", "Content-Type: application/http", "Content-Transfer-Encoding: binary"]
        if content_id:
            head.append(f"Content-ID: {content_id}")
        lines = [f"HTTP/1.1 {status} {_REASONS.get(status, '')}".rstrip(), *(f"{k}: {v}" for k, v in headers.items())]
        chunks.append(("\r\n".join(head) + "\r\n\r\n" + "\r\n".join(lines) + "\r\n\r\n").encode() + body + b"\r\n")
    chunks.append(f"--{boundary}--\r\n".encode())
    return b"".join(chunks)

