"""Dataverse writes and webhook registration, as methods of `DataverseClient` (same session, same
retries honouring `Retry-After`, same egress guard).

- `create` / `update` are one row each; `update` sends `If-Match: *` so a deleted row is an error
  (`RecordMissing`) instead of being created again by PATCH's upsert.
- `update_many` uses `UpdateMultiple` where the org has it for the table, else `$batch` change
  sets; both are all-or-nothing per chunk, so a refused chunk is retried row by row and only the
  rows at fault fail.
- A 400 names the column at fault: it comes back as `InvalidValue`, `UnknownAttribute` or
  `RequiredAttributeMissing`. Dataverse enforces only `SystemRequired`, so `required_attributes`
  and `check_required` let a caller refuse a row lacking a Business Required column first.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any
from xml.sax.saxutils import quoteattr

import httpx
from pydantic import BaseModel, ConfigDict, Field

from bot.dynamics.errors import (
    DataverseBadRequest,
    DataverseError,
    DataverseNotFound,
    DataverseValidationError,
    InvalidValue,
    RecordMissing,
    RequiredAttributeMissing,
    UnknownAttribute,
)
from bot.dynamics.webhooks import WEBHOOK_KEY_HEADER, WebhookRegistration
from bot.models import Entity

REQUIRED_LEVELS = {"ApplicationRequired", "SystemRequired"}
BATCH_LIMIT = 1000  # requests per $batch [doc]
WEBHOOK_CONTRACT, AUTH_HTTP_HEADER, JSON_FORMAT = 8, 5, 2
ASYNC_MODE, POST_OPERATION = 1, 40
_GUID = re.compile(r"\(([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})\)")
_QUOTED = re.compile(r"'([^']+)'")
_UNKNOWN = ("Invalid property", "undeclared property", "Could not find a property")
_STATUS = re.compile(rb"^HTTP/1\.1 (\d{3})", re.MULTILINE)


class _Model(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="ignore")


class _Level(_Model):
    value: str | None = Field(None, alias="Value")


class _RequiredRow(_Model):
    logical_name: str = Field(alias="LogicalName")
    attribute_of: str | None = Field(None, alias="AttributeOf")
    required_level: _Level | None = Field(None, alias="RequiredLevel")


class _RequiredRows(_Model):
    value: list[_RequiredRow]


class _Ids(_Model):
    value: list[dict[str, Any]]


class _UserLabel(_Model):
    label: str | None = Field(None, alias="Label")


class _OptionLabel(_Model):
    user_localized_label: _UserLabel | None = Field(None, alias="UserLocalizedLabel")


class _Option(_Model):
    value: int = Field(alias="Value")
    label: _OptionLabel | None = Field(None, alias="Label")


class _OptionSet(_Model):
    options: list[_Option] = Field(default_factory=list, alias="Options")


class _ChoiceRow(_Model):
    logical_name: str = Field(alias="LogicalName")
    option_set: _OptionSet | None = Field(None, alias="OptionSet")


class _ChoiceRows(_Model):
    value: list[_ChoiceRow]


def check_required(entity: Entity | str, values: Mapping[str, Any], required: Iterable[str]) -> None:
    """Raises `RequiredAttributeMissing` naming every required column with no value (absent, null
    or blank) in `values`; a lookup set with `<name>@odata.bind` counts as a value."""
    missing = [name for name in required
               if values.get(name) in (None, "") and values.get(f"{name}@odata.bind") in (None, "")]
    if missing:
        raise RequiredAttributeMissing(Entity(entity).value, missing)


def validation_error(entity: str, values: Mapping[str, Any], error: DataverseError) -> DataverseError:
    """A 400 for a write as the typed error naming the column at fault (the first quoted name in
    Dataverse's message that the write sent); other errors unchanged."""
    if not isinstance(error, DataverseBadRequest) or isinstance(error, DataverseValidationError):
        return error
    sent = {key.split("@", 1)[0] for key in values}
    attribute = next((name for name in _QUOTED.findall(error.message) if name in sent), None)
    if any(marker in error.message for marker in _UNKNOWN):
        return UnknownAttribute(error.status, error.code, error.message, entity=entity, attribute=attribute)
    if "null" in error.message and "equired" in error.message and attribute:
        return RequiredAttributeMissing(entity, [attribute], error.status, error.code, error.message)
    return InvalidValue(error.status, error.code, error.message, entity=entity, attribute=attribute)


def _entity_id(response: httpx.Response) -> str:
    match = _GUID.search(response.headers.get("OData-EntityId", ""))
    if match is None:
        raise DataverseError(response.status_code, "", "no OData-EntityId in the answer to a create")
    return match.group(1).lower()


def _chunks(rows: Sequence[Mapping[str, Any]], size: int) -> Iterable[Sequence[Mapping[str, Any]]]:
    return (rows[start:start + size] for start in range(0, len(rows), size))


class DataverseWrites:
    """The write half of `DataverseClient` (a mixin: it uses the client's `send` and `url`)."""

    write_batch_size = 1000  # rows per UpdateMultiple / $batch; UpdateMultiple has no fixed limit [doc]

    _message_support: dict[tuple[str, str], bool] | None = None

    if TYPE_CHECKING:  # provided by DataverseClient
        def send(self, method: str, url: str, *, prefer: list[str] | None = None, body: Any = None,
                 content: bytes | None = None, headers: dict[str, str] | None = None,
                 idempotent: bool = True) -> httpx.Response: ...

        def get(self, url: str, prefer: list[str] | None = None) -> httpx.Response: ...

        def url(self, path: str, params: dict[str, str] | None = None) -> str: ...

    # -- rows -----------------------------------------------------------------------------------------
    def create(self, entity: Entity | str, values: Mapping[str, Any]) -> str:
        """Creates a row; returns its id. Not retried after a 5xx (it may have been created)."""
        entity = Entity(entity)
        try:
            response = self.send("POST", self.url(entity.entity_set), body=dict(values), idempotent=False)
        except DataverseError as exc:
            raise validation_error(entity.value, values, exc) from None
        return _entity_id(response)

    def update(self, entity: Entity | str, record_id: str, values: Mapping[str, Any]) -> None:
        """Updates an existing row (only the columns in `values`); `RecordMissing` if it is gone."""
        entity = Entity(entity)
        try:
            self.send("PATCH", self.url(f"{entity.entity_set}({record_id})"), body=dict(values),
                        headers={"If-Match": "*"})
        except DataverseNotFound as exc:
            raise RecordMissing(exc.status, exc.code, exc.message) from None
        except DataverseError as exc:
            raise validation_error(entity.value, values, exc) from None

    def update_many(self, entity: Entity | str, rows: Sequence[Mapping[str, Any]]) -> dict[str, DataverseError]:
        """Updates rows (each holds its primary id) in chunks of `write_batch_size`; returns the
        rows that failed, by id. Throttling and outages still raise."""
        entity = Entity(entity)
        bulk = self.supports_message(entity, "UpdateMultiple")
        failures: dict[str, DataverseError] = {}
        for chunk in _chunks(rows, min(self.write_batch_size, BATCH_LIMIT) if not bulk else self.write_batch_size):
            try:
                if bulk:
                    self._update_multiple(entity, chunk)
                else:
                    self._batch_update(entity, chunk)
            except (DataverseBadRequest, DataverseNotFound):
                failures |= self._update_each(entity, chunk)
        return failures

    def _update_each(self, entity: Entity, rows: Iterable[Mapping[str, Any]]) -> dict[str, DataverseError]:
        failures: dict[str, DataverseError] = {}
        for row in rows:
            values = {k: v for k, v in row.items() if k != entity.primary_id}
            try:
                self.update(entity, str(row[entity.primary_id]), values)
            except (DataverseBadRequest, DataverseNotFound) as exc:
                failures[str(row[entity.primary_id])] = exc
        return failures

    def _update_multiple(self, entity: Entity, rows: Sequence[Mapping[str, Any]]) -> None:
        targets = [{"@odata.type": f"Microsoft.Dynamics.CRM.{entity.value}", **row} for row in rows]
        self.send("POST", self.url(f"{entity.entity_set}/Microsoft.Dynamics.CRM.UpdateMultiple"),
                    body={"Targets": targets})

    def _batch_update(self, entity: Entity, rows: Sequence[Mapping[str, Any]]) -> None:
        """One `$batch` holding one change set of `PATCH … If-Match: *` requests (atomic)."""
        batch, changeset = f"batch_{uuid.uuid4()}", f"changeset_{uuid.uuid4()}"
        parts = []
        for number, row in enumerate(rows, 1):
            values = {k: v for k, v in row.items() if k != entity.primary_id}
            url = self.url(f"{entity.entity_set}({row[entity.primary_id]})")
            parts.append(
                f"--{changeset}\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n"
                f"Content-ID: {number}\r\n\r\nPATCH {url} HTTP/1.1\r\nContent-Type: application/json\r\n"
                f"If-Match: *\r\n\r\n{json.dumps(values)}\r\n")
        body = (f"--{batch}\r\nContent-Type: multipart/mixed; boundary={changeset}\r\n\r\n" + "".join(parts)
                + f"--{changeset}--\r\n--{batch}--\r\n").encode()
        response = self.send("POST", self.url("$batch"), content=body,
                             headers={"Content-Type": f"multipart/mixed; boundary={batch}"})
        for match in _STATUS.finditer(response.content):
            status = int(match.group(1))
            if status >= 400:
                detail = response.content[match.end():]
                message = re.search(rb'"message"\s*:\s*"((?:[^"\\]|\\.)*)"', detail)
                code = re.search(rb'"code"\s*:\s*"([^"]*)"', detail)
                cls = DataverseNotFound if status == 404 else DataverseBadRequest
                raise cls(status, code.group(1).decode() if code else "",
                          message.group(1).decode() if message else "")

    def supports_message(self, entity: Entity | str, message: str) -> bool:
        """Does the org have `message` (e.g. UpdateMultiple) for this table? Not every table does."""
        entity = Entity(entity)
        if self._message_support is None:
            self._message_support = {}
        cache = self._message_support
        key = (entity.value, message)
        if key not in cache:
            body = self.get(self.url("sdkmessagefilters", {
                "$select": "sdkmessagefilterid",
                "$filter": f"sdkmessageid/name eq '{message}' and primaryobjecttypecode eq '{entity.value}'"}))
            cache[key] = bool(_Ids.model_validate_json(body.content).value)
        return cache[key]

    # -- metadata ----------------------------------------------------------------------------------
    def required_attributes(self, entity: Entity | str) -> list[str]:
        """Columns a new row must have (`RequiredLevel` ApplicationRequired or SystemRequired), without
        those the server fills in itself: the primary id and `ownerid` (the caller by default)."""
        entity = Entity(entity)
        body = self.get(self.url(f"EntityDefinitions(LogicalName='{entity.value}')/Attributes", {
            "$select": "LogicalName,RequiredLevel,AttributeOf"}))
        rows = _RequiredRows.model_validate_json(body.content).value
        return sorted(row.logical_name for row in rows
                      if row.attribute_of is None and row.required_level and row.required_level.value in REQUIRED_LEVELS
                      and row.logical_name not in {entity.primary_id, "ownerid"})

    def choice_options(self, entity: Entity | str) -> dict[str, dict[str, int]]:
        """Each choice column of the table → its option labels (as users see them) → option values: what
        a label read from Marketo is written back as."""
        entity = Entity(entity)
        body = self.get(self.url(
            f"EntityDefinitions(LogicalName='{entity.value}')/Attributes/Microsoft.Dynamics.CRM.PicklistAttributeMetadata",
            {"$select": "LogicalName", "$expand": "OptionSet($select=Options)"}))
        options: dict[str, dict[str, int]] = {}
        for row in _ChoiceRows.model_validate_json(body.content).value:
            labels = {}
            for option in row.option_set.options if row.option_set else []:
                text = option.label.user_localized_label if option.label else None
                if text is not None and text.label:
                    labels[text.label] = option.value
            options[row.logical_name] = labels
        return options

    # -- webhooks ----------------------------------------------------------------------------------
    def register_webhook(
        self,
        url: str,
        key: str,
        entities: Iterable[Entity | str],
        messages: Iterable[str] = ("Create", "Update", "Delete"),
        *,
        name: str = "connect-dynamics",
        header: str = WEBHOOK_KEY_HEADER,
    ) -> WebhookRegistration:
        """A service endpoint posting to `url` with `key` in the `header` header, and one async
        PostOperation step per entity and message. On failure, what was made is removed again."""
        authvalue = f"<settings><setting name={quoteattr(header)} value={quoteattr(key)} /></settings>"
        endpoint = self.send("POST", self.url("serviceendpoints"), body={
            "name": name, "url": url, "contract": WEBHOOK_CONTRACT, "authtype": AUTH_HTTP_HEADER,
            "messageformat": JSON_FORMAT, "authvalue": authvalue}, idempotent=False)
        registration = WebhookRegistration(endpoint_id=_entity_id(endpoint))
        try:
            for message in messages:
                message_id = self._lookup_id("sdkmessages", "sdkmessageid", f"name eq '{message}'")
                for entity in map(Entity, entities):
                    filter_id = self._lookup_id("sdkmessagefilters", "sdkmessagefilterid",
                                                f"sdkmessageid/name eq '{message}' and "
                                                f"primaryobjecttypecode eq '{entity.value}'")
                    step = self.send("POST", self.url("sdkmessageprocessingsteps"), body={
                        "name": f"{name}: {message} of {entity.value}", "mode": ASYNC_MODE, "stage": POST_OPERATION,
                        "rank": 1, "supporteddeployment": 0, "asyncautodelete": True,
                        "eventhandler_serviceendpoint@odata.bind": f"/serviceendpoints({registration.endpoint_id})",
                        "sdkmessageid@odata.bind": f"/sdkmessages({message_id})",
                        "sdkmessagefilterid@odata.bind": f"/sdkmessagefilters({filter_id})"}, idempotent=False)
                    registration.step_ids.append(_entity_id(step))
        except DataverseError:
            self.unregister_webhook(registration)
            raise
        return registration

    def _lookup_id(self, table: str, id_column: str, condition: str) -> str:
        body = self.get(self.url(table, {"$select": id_column, "$filter": condition}))
        rows = _Ids.model_validate_json(body.content).value
        if not rows:
            raise DataverseNotFound(404, "", f"no {table} row where {condition}")
        return str(rows[0][id_column])

    def unregister_webhook(self, registration: WebhookRegistration) -> None:
        """Removes the steps and the endpoint; rows already gone are fine."""
        targets = [f"sdkmessageprocessingsteps({step})" for step in registration.step_ids]
        for path in [*targets, f"serviceendpoints({registration.endpoint_id})"]:
            try:
                self.send("DELETE", self.url(path))
            except DataverseNotFound:
                continue
