"""Emulator of the Dataverse Web API, with its Entra ID tenant (`sandbox.entra`) on the same server.

One HTTPS server (a trustme CA made at start; `ca_path` is its PEM for `CA_BUNDLE`) serves both.
Dataverse as documented: WhoAmI, systemusers, roles, solutions, entity and attribute metadata
(with the cast segments), record reads with `$select` / `$filter` (`sandbox.odata`) / `$count`,
`odata.maxpagesize` paging with an opaque `$skiptoken`, formatted-value and lookup-target annotations
(`lookuplogicalname`: a contact's parent account, a lead's `parentaccountid`, an owner that is a user or
`team_id`), change tracking with delta links and `$deletedEntity` rows, service-protection 429s and
fault injection.
Writes (create, update, delete, CreateMultiple / UpdateMultiple / UpsertMultiple, `$batch`) are
validated by `sandbox.dataverse_writes`, stamp `createdby` / `modifiedby` with the caller, and
notify the webhooks registered through the Web API (`sandbox.dataverse_webhooks`).

Records are never held in memory: record i of an entity is computed from (seed, entity, i).
Only the small change log (updates, deletes, creates) is kept.
"""

from __future__ import annotations

import asyncio
import base64
import bisect
import functools
import hashlib
import itertools
import json
import math
import re
import shutil
import tempfile
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import quote, urlencode

import pydantic_core
import trustme
from pydantic import BaseModel, Field
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from bot.dynamics.auth import PUBLIC_CLIENT_ID
from sandbox import dataverse_opportunities as opportunities
from sandbox.dataverse_custom import CUSTOM_TABLES, relationship_rows
from sandbox.dataverse_webhooks import Change, WebhookRegistry
from sandbox.dataverse_writes import (
    INVALID_ARGUMENT,
    LOOKUP_TYPES,
    NOT_FOUND,
    SYNTAX,
    batch_parts,
    batch_response,
    max_length,
    required_level,
    validated_values,
)
from sandbox.entra import EntraTenant
from sandbox.odata import FilterParser, ODataError, Predicate, unknown_property
from sandbox.server import Emulator, ServerThread

API = "/api/data/v9.2"
FORMATTED = "OData.Community.Display.V1.FormattedValue"
LOOKUP_TARGET = "Microsoft.Dynamics.CRM.lookuplogicalname"
MAX_PAGE_SIZE = 5000
COUNT_LIMIT = 5000
INDEXED_ROWS = 100_000  # a column index of a larger table would cost the emulator more memory than scans cost time
SYNC_ROLE = "Marketo Sync User"
SOLUTION_FRIENDLY_NAME = "Marketo Lead Management"
ENTITY_SETS = {"lead": "leads", "contact": "contacts", "account": "accounts", **opportunities.ENTITY_SETS,
               **{t.logical_name: t.entity_set for t in CUSTOM_TABLES.values()}}
# What QualifyLead copies from the lead onto the new contact.
QUALIFY_COPIES = frozenset({"firstname", "lastname", "emailaddress1", "telephone1", "jobtitle", "address1_city",
                            "websiteurl", "donotbulkemail"})
_NS = uuid.UUID("6f1c0e3e-2b7a-4a8e-9a51-0c7d7a1f0d00")
_BASE_TIME = datetime(2025, 1, 1, tzinfo=UTC)


# -- configuration -------------------------------------------------------------------------------


class EmulatedUser(BaseModel):
    """An Entra ID user. `is_sync_user=False` means the user exists in Entra ID but is not a user
    of the Dynamics organization (Dataverse answers 403); `crm_disabled` sets `systemuser.isdisabled`."""

    username: str
    password: str = "Passw0rd!"
    full_name: str = "Marketo Sync"
    mfa: bool = False
    mfa_registration: bool = False
    locked: bool = False
    disabled: bool = False
    password_expired: bool = False
    blocked_by_ca: bool = False
    crm_disabled: bool = False
    domainname: str | None = None  # systemuser domainname and email, when they differ from the username
    roles: list[str] = Field(default_factory=lambda: [SYNC_ROLE])
    is_sync_user: bool = True


class EmulatedApp(BaseModel):
    """An app registration; with `app_user_email` it also has an Application User in Dynamics."""

    client_id: str
    secret: str | None = None
    secret_expired: bool = False
    allow_public_client: bool = False
    consented: bool = True
    app_user_email: str | None = None
    app_user_name: str = "Marketo Sync App"
    roles: list[str] = Field(default_factory=lambda: [SYNC_ROLE])


def _default_users() -> list[EmulatedUser]:
    return [EmulatedUser(username="sync@contoso.com")]


class DynamicsEmulatorConfig(BaseModel):
    tenant_domains: list[str] = Field(default_factory=lambda: ["contoso.com"])
    users: list[EmulatedUser] = Field(default_factory=_default_users)
    apps: list[EmulatedApp] = Field(default_factory=list)
    solution_installed: bool = True
    records: dict[str, int] = Field(default_factory=dict)
    seed: int = 0
    extra_attributes: dict[str, int] = Field(default_factory=dict)
    # entity -> logical name of a Boolean "Sync to Marketo" attribute (None/absent: no such attribute).
    # Only `new_synctomkto` is Marketo's filter; any other name makes a look-alike.
    sync_filter: dict[str, str | None] = Field(default_factory=dict)
    filter_false_fraction: float = 0.2
    filter_null_fraction: float = 0.1
    duplicate_fraction: float = 0.0
    latency: float = 0.0
    token_lifetime: int = 3600
    max_requests: int | None = None
    window_seconds: float = 300.0
    max_concurrent: int | None = None
    change_tracking: bool = True
    # entities whose table has "Track changes" off (ChangeTrackingEnabled false) although `change_tracking` is on
    untracked_entities: set[str] = Field(default_factory=set)
    # tables this org does not have (e.g. "opportunity" and "connection" without Dynamics 365 Sales)
    absent_tables: set[str] = Field(default_factory=set)


# -- attribute catalogue ------------------------------------------------------------------------

_FIRST = ["Ann", "Bob", "Chloe", "Dev", "Erin", "Femi", "Gus", "Hana", "Ivan", "Jo", "Kai", "Lena", "Mo", "Nia"]
_LAST = ["Smith", "Okafor", "Garcia", "Chen", "Novak", "Silva", "Kumar", "Berg", "Ito", "Walsh", "Haddad"]
_COMPANIES = ["Contoso", "Fabrikam", "Northwind", "Tailspin", "Adatum", "Litware", "Proseware", "Wingtip"]
_TITLES = ["CEO", "CTO", "Buyer", "Engineer", "Marketing Manager", "Analyst", "Director of Sales"]
_PICKLIST = ["Advertisement", "Employee Referral", "External Referral", "Partner", "Web"]
_OWNERS = ["Olivia Owner", "Oscar Owner", "Orla Owner"]

_TYPE_CODES = {
    "StringType": "String", "MemoType": "Memo", "BooleanType": "Boolean", "DateTimeType": "DateTime",
    "MoneyType": "Money", "IntegerType": "Integer", "PicklistType": "Picklist", "OwnerType": "Owner",
    "LookupType": "Lookup", "CustomerType": "Customer", "UniqueidentifierType": "Uniqueidentifier",
    "VirtualType": "Virtual", "ImageType": "Virtual", "StateType": "State",
}
_METADATA_TYPES = {
    "StringType": "StringAttributeMetadata", "MemoType": "MemoAttributeMetadata",
    "BooleanType": "BooleanAttributeMetadata", "DateTimeType": "DateTimeAttributeMetadata",
    "MoneyType": "MoneyAttributeMetadata", "IntegerType": "IntegerAttributeMetadata",
    "PicklistType": "PicklistAttributeMetadata", "OwnerType": "LookupAttributeMetadata",
    "LookupType": "LookupAttributeMetadata", "CustomerType": "LookupAttributeMetadata",
    "UniqueidentifierType": "UniqueIdentifierAttributeMetadata", "VirtualType": "AttributeMetadata",
    "ImageType": "ImageAttributeMetadata", "StateType": "StateAttributeMetadata",
}
_LOOKUPS = {"OwnerType", "LookupType", "CustomerType"}


@dataclass(frozen=True)
class AttrSpec:
    logical_name: str
    display_name: str | None  # None: UserLocalizedLabel is null (helper / virtual columns do this)
    type_name: str
    format: str | None = None
    behavior: str | None = None
    custom: bool = False
    attribute_of: str | None = None
    readable: bool = True
    updatable: bool = True  # IsValidForUpdate
    source_type: int = 0  # SourceType: 0 simple, 1 calculated, 2 rollup

    @property
    def read_name(self) -> str:
        return f"_{self.logical_name}_value" if self.type_name in _LOOKUPS else self.logical_name

    @property
    def selectable(self) -> bool:
        return self.readable and self.attribute_of is None and self.type_name not in {"VirtualType", "ImageType"}


def _merge_attrs() -> list[AttrSpec]:
    """Set by the Merge action on the record merged away (read-only, reference D6)."""
    return [
        AttrSpec("merged", "Merged", "BooleanType"),
        AttrSpec("masterid", "Master ID", "LookupType"),
    ]


def _person_attrs() -> list[AttrSpec]:
    return _merge_attrs() + [
        AttrSpec("statecode", "Status", "StateType"),
        AttrSpec("firstname", "First Name", "StringType", format="Text"),
        AttrSpec("lastname", "Last Name", "StringType", format="Text"),
        AttrSpec("fullname", "Full Name", "StringType", format="Text", updatable=False),
        AttrSpec("jobtitle", "Job Title", "StringType", format="Text"),
        AttrSpec("lastusedincampaign", "Last Date Included in Campaign", "DateTimeType", behavior="UserLocal"),
        AttrSpec("entityimage", "Entity Image", "ImageType"),
    ]


def _common_attrs(entity: str) -> list[AttrSpec]:
    return [
        AttrSpec(f"{entity}id", None if entity == "account" else entity.title(), "UniqueidentifierType",
                 updatable=False),
        AttrSpec("emailaddress1", "Email", "StringType", format="Email"),
        AttrSpec("telephone1", "Business Phone", "StringType", format="Phone"),
        AttrSpec("websiteurl", "Website", "StringType", format="Url"),
        AttrSpec("address1_city", "Address 1: City", "StringType", format="Text"),
        AttrSpec("donotbulkemail", "Do not allow Bulk Emails", "BooleanType"),
        AttrSpec("numberofemployees", "No. of Employees", "IntegerType"),
        AttrSpec("modifiedon", "Modified On", "DateTimeType", behavior="UserLocal", updatable=False),
        AttrSpec("createdon", "Created On", "DateTimeType", behavior="UserLocal", updatable=False),
        AttrSpec("ownerid", "Owner", "OwnerType"),
        AttrSpec("createdby", "Created By", "LookupType", updatable=False),
        AttrSpec("modifiedby", "Modified By", "LookupType", updatable=False),
        AttrSpec("owneridname", None, "StringType", attribute_of="ownerid"),
        AttrSpec("owneridyominame", None, "StringType", attribute_of="ownerid"),
        AttrSpec("new_internalnote", "Internal Note", "MemoType", custom=True, readable=False),
    ]


_ENTITY_ATTRS: dict[str, list[AttrSpec]] = {
    "lead": _common_attrs("lead") + _person_attrs() + [
        AttrSpec("companyname", "Company Name", "StringType", format="Text"),
        AttrSpec("parentaccountid", "Parent Account for lead", "LookupType"),
        AttrSpec("subject", "Topic", "StringType", format="Text"),
        AttrSpec("revenue", "Annual Revenue", "MoneyType"),
        AttrSpec("estimatedclosedate", "Est. Close Date", "DateTimeType", behavior="DateOnly"),
        AttrSpec("leadsourcecode", "Lead Source", "PicklistType"),
        AttrSpec("new_daysopen", "Days Open", "IntegerType", custom=True, updatable=False, source_type=1),
    ],
    "contact": _common_attrs("contact") + _person_attrs() + [
        AttrSpec("parentcustomerid", "Company Name", "CustomerType"),
        AttrSpec("parentcustomeridname", None, "StringType", attribute_of="parentcustomerid"),
        AttrSpec("originatingleadid", "Originating Lead", "LookupType"),
        AttrSpec("annualincome", "Annual Income", "MoneyType"),
        AttrSpec("birthdate", "Birthday", "DateTimeType", behavior="DateOnly"),
        AttrSpec("leadsourcecode", "Lead Source", "PicklistType", custom=True),
        AttrSpec("new_opendeals", "Open Deals", "IntegerType", custom=True, updatable=False, source_type=2),
    ],
    "account": _common_attrs("account") + [
        AttrSpec("name", "Account Name", "StringType", format="Text"),
        AttrSpec("revenue", "Annual Revenue", "MoneyType"),
        AttrSpec("new_foundedon", "Founded On", "DateTimeType", behavior="DateOnly", custom=True),
        AttrSpec("industrycode", "Industry", "PicklistType"),
        AttrSpec("lastusedincampaign", "Last Date Included in Campaign", "DateTimeType", behavior="TimeZoneIndependent"),
    ],
    **{t.logical_name: [
        AttrSpec(t.primary_id, t.display_name, "UniqueidentifierType", updatable=False),
        *(AttrSpec(c.logical_name, c.display_name, c.type_name, format=c.format, behavior=c.behavior, custom=True)
          for c in t.columns),
        AttrSpec("modifiedon", "Modified On", "DateTimeType", behavior="UserLocal", updatable=False),
        AttrSpec("createdon", "Created On", "DateTimeType", behavior="UserLocal", updatable=False),
    ] for t in CUSTOM_TABLES.values()},
    **opportunities.attribute_rows(AttrSpec),
}


def _money(value: float) -> str:
    return f"${value:,.2f}"


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


# Generated dates and times are whole minutes after midnight of a base day, so their text comes from
# small tables instead of datetime arithmetic and strftime (the slowest step of record generation).
_CLOCK = tuple((f"{m // 60:02d}:{m % 60:02d}:00Z", f"{(m // 60) % 12 or 12}:{m % 60:02d} {'AM' if m < 720 else 'PM'}")
               for m in range(24 * 60))


@functools.lru_cache(maxsize=4096)
def _day(base: date, days: int) -> tuple[str, str]:
    """`base` + `days`: ISO date and Dynamics' formatted value (`M/D/YYYY`)."""
    day = base + timedelta(days=days)
    return day.isoformat(), f"{day.month}/{day.day}/{day.year}"


def _moment(minutes: int) -> tuple[str, str]:
    """`_BASE_TIME` + `minutes`: `YYYY-MM-DDTHH:MM:SSZ` and Dynamics' formatted value (`M/D/YYYY h:MM AM`)."""
    days, minute = divmod(minutes, 24 * 60)
    iso_date, label = _day(_BASE_TIME.date(), days)
    iso_time, clock = _CLOCK[minute]
    return f"{iso_date}T{iso_time}", f"{label} {clock}"


_NS_BYTES = _NS.bytes


def _guid(*parts: object) -> str:
    """`str(uuid.uuid5(_NS, "a:b:c"))`, computed without building UUID objects (one per generated record)."""
    digest = bytearray(hashlib.sha1(_NS_BYTES + ":".join(str(p) for p in parts).encode()).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50
    digest[8] = (digest[8] & 0x3F) | 0x80
    x = digest.hex()
    return f"{x[:8]}-{x[8:12]}-{x[12:16]}-{x[16:20]}-{x[20:]}"


Generator = Callable[[int, bytes], tuple[Any, str | None]]


class _Field(NamedTuple):
    read_name: str
    logical_name: str
    generate: Generator
    annotation: str  # formatted value
    target_key: str  # lookuplogicalname
    target: Callable[[Any], str] | None  # lookups only


# -- state ------------------------------------------------------------------------------------------


@dataclass
class _EntityState:
    count: int
    overrides: dict[int, dict[str, Any]] = field(default_factory=dict)
    deleted: set[int] = field(default_factory=set)


@dataclass
class _Query:
    """A parsed record query; what the opaque skiptoken and the delta token carry state for."""

    entity: str
    select: list[str]
    params: dict[str, str]
    predicate: Predicate | None
    filter_names: set[str]
    membership: tuple[str, frozenset[str]] | None = None  # the filter is `prop eq a or prop eq b ...`


@dataclass
class _Commit:
    """The writes of one request or change set: applied at once, undone together on an error, and
    seen by change tracking and webhooks only once committed."""

    undo: list[Callable[[], None]] = field(default_factory=list)
    logged: list[tuple[str, int]] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)


class DynamicsEmulator(Emulator):
    """`DynamicsEmulator(records={"lead": 1000}, ...)` or `DynamicsEmulator(config)`; a context manager."""

    def __init__(self, config: DynamicsEmulatorConfig | None = None, **overrides: Any) -> None:
        base = config or DynamicsEmulatorConfig()
        self.config = DynamicsEmulatorConfig.model_validate({**base.model_dump(), **overrides})
        self.tenant_id = _guid("tenant", self.config.tenant_domains[0])
        self.organization_id = _guid("org", self.config.seed)
        self.business_unit_id = _guid("bu", self.config.seed)
        self.team_id = _guid(self.config.seed, "team", 0)  # a team that can own records (`update_record(ownerid=)`)
        apps = {PUBLIC_CLIENT_ID: EmulatedApp(client_id=PUBLIC_CLIENT_ID, allow_public_client=True)}
        apps.update({a.client_id.lower(): a for a in self.config.apps})
        self.entra = EntraTenant(self.tenant_id, self.config.tenant_domains, self.config.users, apps,
                                 self.config.token_lifetime)
        self._opportunity_columns = opportunities.Generators(
            self.config.seed, self.config.records, self._digest, _guid, self._account_name, self._contact_name)
        self._attributes = {e: self._build_attributes(e) for e in ENTITY_SETS}
        self._readable = {e: {a.read_name: a for a in attrs if a.selectable} for e, attrs in self._attributes.items()}
        self._generators = {e: {n: self._generator(e, a) for n, a in r.items()} for e, r in self._readable.items()}
        self._field_cache: dict[tuple[str, tuple[str, ...]], list[_Field]] = {}
        self._totals: dict[tuple[str, str, int], int] = {}
        self._column_indexes: dict[tuple[str, str], tuple[int, dict[str, list[int]]]] = {}
        self._lock = threading.Lock()
        self._entities = {e: _EntityState(self.config.records.get(e, 0)) for e in ENTITY_SETS}
        self._version = 1000
        self._change_log: list[tuple[int, str, int]] = []
        self._min_delta_version = 0
        self._failures: deque[int] = deque()
        self._next_link: str | None = None
        self._windows: dict[str, deque[float]] = {}
        self._in_flight = 0
        self.requests = 0
        self.throttled = 0
        self.max_concurrent_seen = 0
        self._dir: Path | None = None
        self._server: ServerThread | None = None
        self.ca_path = ""
        self._row_ids: dict[str, dict[str, int]] = {e: {} for e in ENTITY_SETS}
        self._ids_mapped: dict[str, int] = {e: 0 for e in ENTITY_SETS}  # rows below this index are in _row_ids
        self.webhooks = WebhookRegistry(organization="localhost")  # the org's host, as deliveries name it
        self._committed: list[Change] = []
        self.app = Starlette(routes=[
            *self.entra.routes,
            Route(API + "/{path:path}", self._dataverse, methods=["GET", "POST", "PATCH", "DELETE"]),
        ])

    # -- lifecycle --------------------------------------------------------------------------------
    def start(self) -> DynamicsEmulator:
        self._dir = Path(tempfile.mkdtemp(prefix="dynamics-emulator-"))
        ca = trustme.CA()
        cert = ca.issue_cert("localhost", "127.0.0.1")
        self.ca_path = str(self._dir / "ca.pem")
        ca.cert_pem.write_to_path(self.ca_path)
        certfile, keyfile = self._dir / "cert.pem", self._dir / "key.pem"
        cert.private_key_pem.write_to_path(str(keyfile))
        for i, pem in enumerate(cert.cert_chain_pems):
            pem.write_to_path(str(certfile), append=i > 0)
        self._server = ServerThread(self.app, certfile=str(certfile), keyfile=str(keyfile)).start()
        return self

    def stop(self) -> None:
        self.webhooks.close()
        if self._server:
            self._server.stop()
            self._server = None
        if self._dir:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def url(self) -> str:
        """The Dataverse organization URL (what a user types as the Dynamics URL)."""
        return f"https://localhost:{self.port}"

    @property
    def authority_host(self) -> str:
        """The value for ENTRA_AUTHORITY_HOST."""
        return f"localhost:{self.port}"

    # -- knobs and inspection -----------------------------------------------------------------------
    def fail_next(self, n: int, status: int = 503) -> None:
        """The next `n` Dataverse requests answer `status` (429 and 503 carry Retry-After: 1)."""
        with self._lock:
            self._failures.extend([status] * n)

    def send_next_link(self, link: str | None) -> None:
        """Every page that has more answers `link` as its @odata.nextLink (None: the real one again),
        as a faulty or hostile server would."""
        with self._lock:
            self._next_link = link

    def expire_tokens(self) -> None:
        """Every access token issued so far expires now (Dataverse then answers 401)."""
        self.entra.expire_tokens()

    def change_password(self, username: str, password: str) -> None:
        """The user's password is changed (by an admin or a password policy): sign-ins with the old one
        fail with AADSTS50126 from now on, and the tokens issued so far expire."""
        with self._lock:
            user = next(u for u in self.config.users if u.username.lower() == username.lower())
            user.password = password
        self.entra.expire_tokens()

    @property
    def token_requests(self) -> int:
        return self.entra.token_requests

    @property
    def tokens_issued(self) -> int:
        return self.entra.tokens_issued

    def expire_change_tokens(self) -> None:
        """Every delta link issued so far stops working (as after ExpireChangeTrackingInDays)."""
        with self._lock:
            self._min_delta_version = self._version + 1

    def update_record(self, entity: str, index: int, **fields: Any) -> None:
        """A change made in Dynamics by a person (`person_user_id`), not by the sync user."""
        with self._lock:
            state = self._entities[entity]
            if not 0 <= index < state.count or index in state.deleted:
                raise KeyError(f"{entity} {index} does not exist")
            commit = _Commit()
            self._update_row(commit, entity, index, fields, self.person_user_id)
            self._commit(commit)

    def delete_record(self, entity: str, index: int) -> None:
        with self._lock:
            commit = _Commit()
            self._delete_row(commit, entity, index, self.person_user_id)
            self._commit(commit)

    def create_records(self, entity: str, n: int) -> range:
        """Appends `n` generated records (made by people in Dynamics); returns their indexes."""
        with self._lock:
            state = self._entities[entity]
            created = range(state.count, state.count + n)
            state.count += n
            for index in created:
                self._log(entity, index)
            if self.webhooks.listens(entity, "Create"):
                for index in created:
                    values = self._row_values(entity, index)
                    self.webhooks.publish(Change("Create", entity, self.record_id(entity, index), values,
                                                 values.get("createdby", self.person_user_id)),
                                          self._lookup_targets(entity))
            return created

    def qualify_lead(self, index: int) -> str:
        """A person qualifies lead `index` in Dynamics (QualifyLead with CreateContact): returns the new contact's id."""
        with self._lock:
            commit = _Commit()
            contact_id = self._qualify(commit, self.record_id_at("lead", index), self.person_user_id)
            self._commit(commit)
            return contact_id

    def merge_records(self, entity: str, master: int, subordinate: int) -> None:
        """A person merges record `subordinate` into `master` in Dynamics (the Merge action)."""
        with self._lock:
            commit = _Commit()
            self._merge(commit, entity, self.record_id_at(entity, master), self.record_id_at(entity, subordinate), {},
                        self.person_user_id)
            self._commit(commit)

    def record_id(self, entity: str, index: int) -> str:
        return _guid(self.config.seed, entity, index)

    def connection_role_id(self, role: str) -> str:
        """The id of a connection role ("Decision Maker", ...), to write into a connection's `record2roleid`."""
        return self._opportunity_columns.role_id(role)

    def count_records(self, entity: str) -> int:
        state = self._entities[entity]
        return state.count - len(state.deleted)

    def expected_records(
        self, entity: str, select: list[str], apply_filter: bool = True, annotate: bool = False
    ) -> Iterator[dict[str, Any]]:
        """What a correct sync reads: every live record, projected on `select`, with Marketo's filter;
        with `annotate`, the annotations Dataverse sends too (formatted values, lookup targets)."""
        filter_name = self.config.sync_filter.get(entity)
        use_filter = apply_filter and filter_name == "new_synctomkto"
        names = list(dict.fromkeys([f"{entity}id", *select] + (["new_synctomkto"] if use_filter else [])))
        for index in self._live_indexes(entity):
            record = self._record(entity, index, names, annotate=annotate, targets=annotate)
            if use_filter and record.get("new_synctomkto") is False:
                continue
            keep = {f"{entity}id", *select}
            yield {k: v for k, v in record.items() if k.split("@", 1)[0] in keep}

    # -- change log -----------------------------------------------------------------------------
    def _log(self, entity: str, index: int) -> None:
        self._version += 1
        self._change_log.append((self._version, entity, index))

    def _live_indexes(self, entity: str, start: int = 0) -> Iterator[int]:
        state = self._entities[entity]
        return (i for i in range(start, state.count) if i not in state.deleted)

    # -- record generation ------------------------------------------------------------------------------
    def attributes(self, entity: str) -> list[AttrSpec]:
        return self._attributes[entity]

    def _build_attributes(self, entity: str) -> list[AttrSpec]:
        attrs = list(_ENTITY_ATTRS[entity])
        filter_name = self.config.sync_filter.get(entity)
        if filter_name:
            display = "SyncToMkto" if filter_name == "new_synctomkto" else "Sync to Marketo"
            attrs.append(AttrSpec(filter_name, display, "BooleanType", custom=True))
        for k in range(1, self.config.extra_attributes.get(entity, 0) + 1):
            display = None if k % 50 == 0 else f"Extra Field {k:03d}"
            attrs.append(AttrSpec(f"new_extra{k:03d}", display, "StringType", format="Text", custom=True))
        return attrs

    def _digest(self, entity: str, index: int) -> bytes:
        return hashlib.blake2b(f"{self.config.seed}:{entity}:{index}".encode(), digest_size=32).digest()

    def _account_name(self, index: int) -> str:
        return f"{_COMPANIES[self._digest('account', index)[3] % len(_COMPANIES)]} {index % 97}"

    def _contact_name(self, index: int) -> str:
        h = self._digest("contact", index)
        return f"{_FIRST[h[0] % len(_FIRST)]} {_LAST[h[1] % len(_LAST)]}"

    def _base_email(self, entity: str, index: int, h: bytes | None = None) -> str:
        """The unique email of record `index` (`h`: its digest, when the caller has it already)."""
        h = h or self._digest(entity, index)
        return f"{_FIRST[h[0] % len(_FIRST)]}.{_LAST[h[1] % len(_LAST)]}.{entity[0]}{index}@example.com".lower()

    def _email(self, entity: str, index: int, h: bytes) -> str:
        if index > 0 and h[20] / 256 < self.config.duplicate_fraction:
            leads = self.config.records.get("lead", 0)
            if entity == "contact" and leads and h[26] & 1:
                email = self._base_email("lead", int.from_bytes(h[21:25]) % leads)
            else:
                email = self._base_email(entity, int.from_bytes(h[21:25]) % index)
            return email.upper() if h[25] & 1 else email
        return self._base_email(entity, index, h)

    def _generator(self, entity: str, spec: AttrSpec) -> Generator:
        """How to compute one attribute of record i from its digest h: (value, formatted value or None)."""
        name, seed = spec.logical_name, self.config.seed
        company = _COMPANIES
        special = self._opportunity_columns.for_column(entity, name)
        if special is not None:
            return special
        simple: dict[str, Callable[[int, bytes], Any]] = {
            f"{entity}id": lambda i, h: _guid(seed, entity, i),
            "firstname": lambda i, h: _FIRST[h[0] % len(_FIRST)],
            "lastname": lambda i, h: _LAST[h[1] % len(_LAST)],
            "fullname": lambda i, h: f"{_FIRST[h[0] % len(_FIRST)]} {_LAST[h[1] % len(_LAST)]}",
            "emailaddress1": lambda i, h: self._email(entity, i, h),
            "telephone1": lambda i, h: f"+1-555-{i % 10_000:04d}",
            "websiteurl": lambda i, h: f"https://{company[h[3] % len(company)].lower()}.example.com",
            "address1_city": lambda i, h: ["Seattle", "Dublin", "Lagos", "Osaka", "Lima"][h[4] % 5],
            "jobtitle": lambda i, h: _TITLES[h[2] % len(_TITLES)] if h[2] % 9 else None,
            "companyname": lambda i, h: f"{company[h[3] % len(company)]} {i % 97}",
            "name": lambda i, h: f"{company[h[3] % len(company)]} {i % 97}",
        }
        if name in simple:
            plain = simple[name]
            return lambda i, h: (plain(i, h), None)
        if name.startswith("new_extra"):
            return lambda i, h: (f"{name[4:]} of {i}", None)
        kind = spec.type_name
        if entity in CUSTOM_TABLES and (custom := self._custom_generator(entity, spec)) is not None:
            return custom
        if name == "merged":
            return lambda i, h: (False, "No")
        if kind == "StateType":
            active = "Open" if entity == "lead" else "Active"
            return lambda i, h: (0, active)
        if kind == "BooleanType" and name == "donotbulkemail":
            return lambda i, h: (h[8] % 5 == 0, "Do Not Allow" if h[8] % 5 == 0 else "Allow")
        if kind == "BooleanType":
            false_cut = self.config.filter_false_fraction
            null_cut = false_cut + self.config.filter_null_fraction

            def boolean(i: int, h: bytes) -> tuple[Any, str | None]:
                roll = h[27] / 256
                value = False if roll < false_cut else (None if roll < null_cut else True)
                return value, None if value is None else ("Yes" if value else "No")

            return boolean
        if kind == "MoneyType":
            return lambda i, h: (float(int.from_bytes(h[5:7]) * 10), _money(float(int.from_bytes(h[5:7]) * 10)))
        if kind == "IntegerType":
            return lambda i, h: (int.from_bytes(h[9:11]) % 5000, f"{int.from_bytes(h[9:11]) % 5000:,}")
        if kind == "PicklistType":
            return lambda i, h: (100_000_000 + h[7] % len(_PICKLIST), _PICKLIST[h[7] % len(_PICKLIST)])
        if kind == "DateTimeType" and spec.behavior == "DateOnly":
            return lambda i, h: _day(date(2024, 1, 1), h[12] + i % 300)
        if kind == "DateTimeType":
            fixed = {"createdon": 0, "modifiedon": 30}.get(name)

            return lambda i, h: _moment(i + (fixed if fixed is not None else h[13] * 7))
        if kind == "OwnerType" or name in {"createdby", "modifiedby"}:
            owners = [_guid(seed, "owner", k) for k in range(len(_OWNERS))]
            return lambda i, h: (owners[h[14] % len(_OWNERS)], _OWNERS[h[14] % len(_OWNERS)])
        if kind == "CustomerType" or name == "parentaccountid":
            accounts = max(self.config.records.get("account", 0), 1)

            @functools.lru_cache(maxsize=4096)  # many records share an account; a bounded cache
            def account(k: int) -> tuple[Any, str | None]:
                ah = self._digest("account", k)
                return _guid(seed, "account", k), f"{company[ah[3] % len(company)]} {k % 97}"

            if name == "parentaccountid":  # two leads in three name their parent account
                return lambda i, h: account(i % accounts) if h[16] % 3 else (None, None)
            return lambda i, h: account(i % accounts)
        return lambda i, h: (None, None)

    def _custom_generator(self, entity: str, spec: AttrSpec) -> Generator | None:
        """Values of a custom table's own columns: text from the display name, lookups spread over the target."""
        name, seed = spec.logical_name, self.config.seed
        target = CUSTOM_TABLES[entity].lookups().get(name)
        if target is not None:
            count = max(self.config.records.get(target, 0), 1)
            return lambda i, h: (_guid(seed, target, i % count), None)
        if spec.type_name == "StringType":
            return lambda i, h: (f"{spec.display_name} {i}", None)
        return None

    @staticmethod
    def _lookup_table(entity: str, spec: AttrSpec) -> str:
        """The table lookup `spec` of `entity` points to, for reads (`lookuplogicalname`) and webhooks alike."""
        special = {"masterid": entity, "originatingleadid": "lead", "parentaccountid": "account",
                   **(CUSTOM_TABLES[entity].lookups() if entity in CUSTOM_TABLES else {}),
                   **(opportunities.LOOKUP_TARGETS if entity in opportunities.ENTITY_SETS else {})}
        return special.get(spec.logical_name) or ("account" if spec.type_name == "CustomerType" else "systemuser")

    def _target(self, spec: AttrSpec, entity: str) -> Callable[[Any], str] | None:
        """The table a lookup's value points to (the `lookuplogicalname` annotation), by the value: an owner
        is a user or a team."""
        if spec.type_name not in LOOKUP_TYPES:
            return None
        if spec.type_name == "OwnerType":
            return lambda value: "team" if value == self.team_id else "systemuser"
        table = self._lookup_table(entity, spec)
        return lambda value: table

    def _fields(self, entity: str, names: list[str]) -> list[_Field]:
        """How to make and annotate each read name: looked up once per query shape."""
        key = (entity, tuple(names))
        fields = self._field_cache.get(key)
        if fields is None:
            readable, generators = self._readable[entity], self._generators[entity]
            fields = [_Field(n, readable[n].logical_name, generators[n], f"{n}@{FORMATTED}",
                             f"{n}@{LOOKUP_TARGET}", self._target(readable[n], entity)) for n in names]
            if len(self._field_cache) >= 256:
                self._field_cache.clear()
            self._field_cache[key] = fields
        return fields

    def _record(self, entity: str, index: int, names: list[str], *, annotate: bool,
                targets: bool = False) -> dict[str, Any]:
        """Record `index` with the read names `names` (all validated) and, if asked, formatted values and
        (`targets`) the table each lookup points to."""
        h = self._digest(entity, index)
        override = self._entities[entity].overrides.get(index)
        record: dict[str, Any] = {}
        if annotate:
            record["@odata.etag"] = f'W/"{int.from_bytes(h[28:32]) + len(override or ())}"'
        for read_name, logical_name, generate, annotation, target_key, target in self._fields(entity, names):
            if override and (logical_name in override or read_name in override):
                record[read_name] = value = override.get(logical_name, override.get(read_name))
                label = self._choice_label(entity, read_name, value) if annotate else None
                if label is not None:
                    record[annotation] = label
            else:
                value, formatted = generate(index, h)
                record[read_name] = value
                if annotate and formatted is not None:
                    record[annotation] = formatted
            if targets and target is not None and value is not None:
                record[target_key] = target(value)
        return record

    def _choice_label(self, entity: str, read_name: str, value: Any) -> str | None:
        """The label of a choice value, or the name of a lookup's row, written to a record (generated values
        carry theirs already)."""
        spec = self._readable[entity][read_name]
        if spec.type_name in LOOKUP_TYPES:
            return self._opportunity_columns.lookup_label(entity, spec.logical_name, value)
        if spec.type_name != "PicklistType" or not isinstance(value, int):
            return None
        index = value - 100_000_000
        return _PICKLIST[index] if 0 <= index < len(_PICKLIST) else None

    # -- HTTP plumbing ----------------------------------------------------------------------------
    @staticmethod
    def _odata(body: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None) -> Response:
        return Response(
            pydantic_core.to_json(body),  # what json.dumps makes (as UTF-8, no escapes), several times faster
            status_code=status,
            media_type="application/json; odata.metadata=minimal",
            headers={"OData-Version": "4.0", **(headers or {})},
        )

    @classmethod
    def _error(cls, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Response:
        return cls._odata({"error": {"code": code, "message": message}}, status, headers)

    # -- Dataverse: gatekeeping -------------------------------------------------------------------
    def _systemusers(self) -> list[dict[str, Any]]:
        users = [
            {"systemuserid": _guid(self.config.seed, "user", u.username.lower()), **_names(u.full_name),
             "domainname": u.domainname or u.username, "internalemailaddress": u.domainname or u.username,
             "isdisabled": u.crm_disabled, "accessmode": 0, "applicationid": None,
             "azureactivedirectoryobjectid": _guid("aad", u.username.lower()), "_roles": u.roles,
             "_principal": ("user", u.username.lower())}
            for u in self.config.users if u.is_sync_user
        ]
        users += [
            {"systemuserid": _guid(self.config.seed, "app", a.client_id.lower()), **_names(a.app_user_name),
             "domainname": a.app_user_email, "internalemailaddress": a.app_user_email, "isdisabled": False,
             "accessmode": 4, "applicationid": a.client_id, "azureactivedirectoryobjectid": _guid("sp", a.client_id),
             "_roles": a.roles, "_principal": ("app", a.client_id.lower())}
            for a in self.entra.apps.values() if a.app_user_email
        ]
        users += [
            {"systemuserid": _guid(self.config.seed, "owner", i), **_names(name),
             "domainname": f"{name.split()[0].lower()}@{self.config.tenant_domains[0]}",
             "internalemailaddress": f"{name.split()[0].lower()}@{self.config.tenant_domains[0]}",
             "isdisabled": False, "accessmode": 0, "applicationid": None, "azureactivedirectoryobjectid": None,
             "_roles": ["Salesperson"], "_principal": ("owner", str(i))}
            for i, name in enumerate(_OWNERS)
        ]
        return users

    def _authenticate(self, request: Request) -> tuple[dict[str, Any] | None, Response | None]:
        header = request.headers.get("authorization", "")
        principal = self.entra.principal(header[7:]) if header.lower().startswith("bearer ") else None
        if principal is None:
            challenge = (f"Bearer authorization_uri=https://{self.authority_host}/{self.tenant_id}/oauth2/authorize, "
                         f"resource_id={self.url}/")
            return None, Response(status_code=401, headers={"WWW-Authenticate": challenge})
        user = next((u for u in self._systemusers() if u["_principal"] == principal), None)
        if user is None:
            return None, self._error(403, "0x80072560", "The user is not a member of the organization.")
        return user, None

    def _throttle(self, user_id: str) -> Response | None:
        """Service protection: requests per sliding window, checked after the window is exceeded."""
        limit = self.config.max_requests
        if limit is None:
            return None
        now = time.monotonic()
        window = self._windows.setdefault(user_id, deque())
        while window and window[0] <= now - self.config.window_seconds:
            window.popleft()
        if len(window) >= limit:
            self.throttled += 1
            wait = max(1, math.ceil(window[0] + self.config.window_seconds - now))
            return self._error(
                429, "0x80072322",
                f"Number of requests exceeded the limit of {limit} over time window of "
                f"{self.config.window_seconds:g} seconds.", {"Retry-After": str(wait)})
        window.append(now)
        return None

    async def _dataverse(self, request: Request) -> Response:
        self.requests += 1
        with self._lock:
            self._in_flight += 1
            in_flight = self._in_flight
            self.max_concurrent_seen = max(self.max_concurrent_seen, in_flight)
            injected = self._failures.popleft() if self._failures else None
        try:
            if injected is not None:
                headers = {"Retry-After": "1"} if injected in {429, 503} else None
                if injected == 429:
                    self.throttled += 1
                return self._error(injected, "0x80072322" if injected == 429 else "", "Injected failure.", headers)
            limit = self.config.max_concurrent
            if limit is not None and in_flight > limit:
                self.throttled += 1
                return self._error(429, "0x80072326", f"Number of concurrent requests exceeded the limit of {limit}.",
                                   {"Retry-After": "1"})
            user, failure = self._authenticate(request)
            if failure:
                return failure
            assert user is not None
            failure = self._throttle(user["systemuserid"])
            if failure:
                return failure
            if self.config.latency:
                await asyncio.sleep(self.config.latency)
            try:
                if request.method == "GET":
                    return self._route(request, user)
                return self._write_request(request, user, await request.body())
            except ODataError as exc:
                return self._error(exc.status, exc.code, exc.message)
        finally:
            with self._lock:
                self._in_flight -= 1

    # -- Dataverse: resources -------------------------------------------------------------------------
    def _route(self, request: Request, user: dict[str, Any]) -> Response:
        path = request.path_params["path"]
        params = dict(request.query_params)
        if path in {"WhoAmI", "WhoAmI()"}:
            return self._odata({
                "@odata.context": f"{self.url}{API}/$metadata#Microsoft.Dynamics.CRM.WhoAmIResponse",
                "BusinessUnitId": self.business_unit_id, "UserId": user["systemuserid"],
                "OrganizationId": self.organization_id})
        if match := re.fullmatch(r"systemusers\(([0-9a-fA-F-]{36})\)(/systemuserroles_association)?", path):
            target = next((u for u in self._systemusers() if u["systemuserid"] == match.group(1).lower()), None)
            if target is None:
                raise ODataError(404, "0x80040217", f"systemuser With Id = {match.group(1)} Does Not Exist")
            if match.group(2):
                roles = [{"name": r, "roleid": _guid("role", r)} for r in target["_roles"]]
                return self._collection(roles, params, {"name", "roleid"}, "role")
            return self._odata(self._project(target, params, "systemuser"))
        if path == "systemusers":
            return self._collection(self._systemusers(), params, None, "systemuser")
        if path == "solutions":
            solutions = [{"solutionid": _guid("solution", "default"), "uniquename": "Default",
                          "friendlyname": "Default Solution", "version": "1.0", "ismanaged": False}]
            if self.config.solution_installed:
                solutions.append({"solutionid": _guid("solution", "marketo"), "uniquename": "MarketoLeadManagement",
                                  "friendlyname": SOLUTION_FRIENDLY_NAME, "version": "4.0.0.14", "ismanaged": True})
            return self._collection(solutions, params, None, "solution")
        if path == "EntityDefinitions":
            return self._collection(self._entity_rows(), params, None, "EntityMetadata")
        if match := re.fullmatch(r"EntityDefinitions\(LogicalName='(\w+)'\)/ManyToOneRelationships", path):
            self._metadata(match.group(1), False, None)  # 404 for an unknown table
            return self._collection(relationship_rows(match.group(1)), params, None, "OneToManyRelationshipMetadata")
        if match := re.fullmatch(r"EntityDefinitions\(LogicalName='(\w+)'\)(/Attributes(?:/Microsoft\.Dynamics\.CRM\.(\w+))?)?", path):
            return self._metadata(match.group(1), bool(match.group(2)), match.group(3))
        if (table := self.webhooks.table(path)) is not None:
            rows, columns = table
            return self._collection(rows, params, columns, path.removesuffix("s"))
        entity = next((e for e, s in ENTITY_SETS.items() if path in {s, f"{s}/$count"}), None)
        if entity is None or entity in self.config.absent_tables:
            raise ODataError(404, "0x80060888", f"Resource not found for the segment '{path.split('/')[0]}'.")
        return self._records(request, entity, params, counting=path.endswith("/$count"))

    @staticmethod
    def _project(row: dict[str, Any], params: dict[str, str], type_name: str) -> dict[str, Any]:
        public = {k: v for k, v in row.items() if not k.startswith("_")}
        if "$select" not in params:
            return public
        selected = [s.strip() for s in params["$select"].split(",") if s.strip()]
        for name in selected:
            if name not in public:
                raise unknown_property(name, f"Microsoft.Dynamics.CRM.{type_name}")
        id_key = next((k for k in public if k.endswith("id") and k.startswith(type_name)), None)
        return {k: public[k] for k in ([id_key] if id_key else []) + selected if k in public}

    def _collection(self, rows: list[dict[str, Any]], params: dict[str, str], known: set[str] | None,
                    type_name: str) -> Response:
        if "$filter" in params:
            names = known if known is not None else {k for k in rows[0] if not k.startswith("_")} if rows else set()
            parser = FilterParser(params["$filter"], names, f"Microsoft.Dynamics.CRM.{type_name}")
            rows = [r for r in rows if parser.predicate(r)]
        return self._odata({"value": [self._project(r, params, type_name) for r in rows]})

    def _metadata(self, entity: str, attributes: bool, cast: str | None) -> Response:
        if entity not in ENTITY_SETS or entity in self.config.absent_tables:
            raise ODataError(404, "0x80040217", f"Could not find an entity with name {entity}.")
        context = f"{self.url}{API}/$metadata#EntityDefinitions('{entity}')"
        if not attributes:
            return self._odata({"@odata.context": context, **self._entity_row(entity)})
        rows = []
        for spec in self.attributes(entity):
            metadata_type = _METADATA_TYPES[spec.type_name]
            if cast and cast != metadata_type:
                continue
            row: dict[str, Any] = {
                "@odata.type": f"#Microsoft.Dynamics.CRM.{metadata_type}", "LogicalName": spec.logical_name,
                "MetadataId": _guid("attr", entity, spec.logical_name),
            }
            if cast == "StringAttributeMetadata":
                row["Format"] = spec.format
                row["FormatName"] = {"Value": spec.format}
                row["MaxLength"] = max_length(spec)
            elif cast == "DateTimeAttributeMetadata":
                row["Format"] = "DateOnly" if spec.behavior == "DateOnly" else "DateAndTime"
                row["DateTimeBehavior"] = {"Value": spec.behavior}
            elif cast == "PicklistAttributeMetadata":  # as with `$expand=OptionSet($select=Options)`
                row["OptionSet"] = {"Options": [{"Value": 100_000_000 + i, "Label": _label(text)}
                                                for i, text in enumerate(_PICKLIST)]}
            else:
                row.update({
                    "SchemaName": spec.logical_name.title().replace("_", ""), "AttributeOf": spec.attribute_of,
                    "AttributeType": _TYPE_CODES[spec.type_name], "AttributeTypeName": {"Value": spec.type_name},
                    "IsValidForRead": spec.readable, "IsValidForUpdate": spec.updatable,
                    "SourceType": spec.source_type, "IsCustomAttribute": spec.custom,
                    "RequiredLevel": {"Value": required_level(entity, spec), "CanBeChanged": True},
                    "DisplayName": _label(spec.display_name),
                })
            rows.append(row)
        return self._odata({"@odata.context": f"{context}/Attributes", "value": rows})

    def _entity_row(self, entity: str) -> dict[str, Any]:
        custom = CUSTOM_TABLES.get(entity)
        primary_name = custom.primary_name if custom else opportunities.PRIMARY_NAMES.get(
            entity, "name" if entity == "account" else "fullname")
        return {"LogicalName": entity, "EntitySetName": ENTITY_SETS[entity], "PrimaryIdAttribute": f"{entity}id",
                "PrimaryNameAttribute": primary_name, "ChangeTrackingEnabled": self._tracked(entity),
                "MetadataId": _guid("entity", entity), "IsCustomEntity": custom is not None,
                "DisplayName": _label(custom.display_name if custom else entity.title())}

    def _entity_rows(self) -> list[dict[str, Any]]:
        """`GET EntityDefinitions` (with `$filter=IsCustomEntity eq true` to list the custom tables)."""
        return [self._entity_row(e) for e in ENTITY_SETS if e not in self.config.absent_tables]

    # -- Dataverse: records, paging, change tracking ----------------------------------------------------
    def _parse_query(self, entity: str, params: dict[str, str]) -> _Query:
        readable = self._readable[entity]
        type_name = f"Microsoft.Dynamics.CRM.{entity}"
        select = [s.strip() for s in params.get("$select", "").split(",") if s.strip()] or list(readable)
        for name in select:
            if name not in readable:
                raise unknown_property(name, type_name)
        select = list(dict.fromkeys([f"{entity}id", *select]))
        if "$filter" not in params:
            return _Query(entity, select, params, None, set())
        parser = FilterParser(params["$filter"], set(readable), type_name)
        return _Query(entity, select, params, parser.predicate, parser.names, parser.membership)

    def _scan(self, query: _Query, start: int, limit: int, annotate: bool,
              targets: bool = False) -> tuple[list[dict[str, Any]], int]:
        """Up to `limit` matching records from raw index `start`; returns them and the next raw index. A row
        is tested on its filtered columns alone, and only a match is generated whole (a lookup by ids scans
        the table for a few rows)."""
        filter_names = sorted(query.filter_names)
        out: list[dict[str, Any]] = []
        count = self._entities[query.entity].count
        deleted = self._entities[query.entity].deleted
        candidates = self._candidates(query)
        positions = range(start, count) if candidates is None else candidates[bisect.bisect_left(candidates, start):]
        for position in positions:
            if len(out) >= limit:
                return out, position
            if position not in deleted and (query.predicate is None or query.predicate(
                    self._record(query.entity, position, filter_names, annotate=False))):
                out.append(self._record(query.entity, position, query.select, annotate=annotate, targets=targets))
        return out, count

    def _candidates(self, query: _Query) -> list[int] | None:
        """For a lookup of values in one column (`membership`), the sorted indexes of the rows holding them:
        for the primary key from `index_of`, for another column from an index of it built once per data
        version, as a database's would be; None (scan the table) for other filters and, but for the
        primary key, for tables over `INDEXED_ROWS`."""
        if query.membership is None:
            return None
        column, wanted = query.membership
        if column == f"{query.entity}id":  # the primary key: its own index, kept as rows are made
            found = (self.index_of(query.entity, record_id) for record_id in wanted)
            return sorted(index for index in found if index is not None)
        if self._entities[query.entity].count > INDEXED_ROWS:
            return None
        key = (query.entity, column)
        built = self._column_indexes.get(key)
        if built is None or built[0] != self._version:
            rows: dict[str, list[int]] = {}
            for index in range(self._entities[query.entity].count):
                value = self._record(query.entity, index, [column], annotate=False).get(column)
                if isinstance(value, str):
                    rows.setdefault(value.lower(), []).append(index)
            if len(self._column_indexes) >= 16:
                self._column_indexes.clear()
            built = self._column_indexes[key] = (self._version, rows)
        return sorted(index for value in wanted for index in built[1].get(value, ()))

    def _link(self, entity: str, params: dict[str, str], **extra: str) -> str:
        query = {k: v for k, v in params.items() if k not in {"$skiptoken", "$deltatoken"}} | extra
        return f"{self.url}{API}/{ENTITY_SETS[entity]}?" + urlencode(query, quote_via=quote, safe="$,()'=:")

    def _records(self, request: Request, entity: str, params: dict[str, str], *, counting: bool) -> Response:
        prefer = _prefer(request.headers.get("prefer", ""))
        tracking = "odata.track-changes" in prefer and self.config.change_tracking
        if tracking and not self._tracked(entity):
            raise ODataError(400, "0x80060888", f"Change tracking is not enabled for the entity '{entity}'.")
        if "$deltatoken" in params:
            return self._delta(request, entity, params, prefer)
        if tracking and not counting and any(p in params for p in ("$filter", "$orderby", "$expand", "$top")):
            bad = next(p for p in ("$filter", "$orderby", "$expand", "$top") if p in params)
            raise ODataError(400, "0x80060888", f'The "{bad}" query parameter isn\'t supported when Change Tracking is enabled.')
        query = self._parse_query(entity, params)
        if counting:
            return PlainTextResponse(str(self._total(query)))
        page_size = min(int(prefer.get("odata.maxpagesize", MAX_PAGE_SIZE)), MAX_PAGE_SIZE)
        cookie = _read_cookie(params.get("$skiptoken"))
        start, page_number = (cookie["pos"], cookie["page"]) if cookie else (0, 1)
        version = cookie["v"] if cookie else self._version
        annotations = prefer.get("odata.include-annotations", "")
        annotate = FORMATTED in annotations or "*" in annotations
        targets = LOOKUP_TARGET in annotations or "*" in annotations
        if "$orderby" in params:
            records, position, more = self._ordered(query, start, page_size, annotate, targets)
        else:
            records, position = self._scan(query, start, page_size, annotate, targets)
            more = any(True for _ in itertools.islice(self._live_indexes(entity, position), 1))
        body: dict[str, Any] = {"@odata.context": f"{self.url}{API}/$metadata#{ENTITY_SETS[entity]}({','.join(query.select)})"}
        if params.get("$count") == "true":
            body["@odata.count"] = min(self._total(query), COUNT_LIMIT)
        if "Microsoft.Dynamics.CRM.totalrecordcount" in annotations or "*" in annotations:
            total = self._total(query)
            body["@Microsoft.Dynamics.CRM.totalrecordcount"] = min(total, COUNT_LIMIT)
            body["@Microsoft.Dynamics.CRM.totalrecordcountlimitexceeded"] = total > COUNT_LIMIT
        body["value"] = records
        if more:
            token = _write_cookie({"pos": position, "page": page_number + 1, "v": version}, tracking)
            body["@odata.nextLink"] = self._next_link or self._link(entity, params, **{"$skiptoken": token})
        elif tracking:
            body["@odata.deltaLink"] = self._link(entity, params, **{"$deltatoken": _delta_token(version)})
        return self._odata(body, headers=_applied(prefer, tracking))

    def _ordered(self, query: _Query, start: int, limit: int, annotate: bool,
                 targets: bool) -> tuple[list[dict[str, Any]], int, bool]:
        """`$orderby` (`name [asc|desc]`, comma-separated; nulls first when ascending): every match is read
        and sorted, and the page is cut from position `start` of that order (fine for filtered reads)."""
        readable = self._readable[query.entity]
        order: list[tuple[str, bool]] = []
        for part in query.params["$orderby"].split(","):
            name, _, direction = part.strip().partition(" ")
            if name not in readable:
                raise unknown_property(name, f"Microsoft.Dynamics.CRM.{query.entity}")
            order.append((name, direction.strip().lower() == "desc"))
        extra = [name for name, _ in order if name not in query.select]
        wide = _Query(query.entity, query.select + extra, query.params, query.predicate, query.filter_names,
                      query.membership)
        matches, _ = self._scan(wide, 0, self._entities[query.entity].count, annotate, targets)
        for name, descending in reversed(order):  # stable sorts, last key first
            matches.sort(key=lambda r, n=name: (r.get(n) is not None, r.get(n)), reverse=descending)
        page = matches[start:start + limit]
        for record in page:
            for name in extra:
                record.pop(name, None)
                record.pop(f"{name}@{FORMATTED}", None)
                record.pop(f"{name}@{LOOKUP_TARGET}", None)
        return page, start + len(page), start + len(page) < len(matches)

    def _tracked(self, entity: str) -> bool:
        return self.config.change_tracking and entity not in self.config.untracked_entities

    def _total(self, query: _Query) -> int:
        """Matching records. A filtered count scans the table, so it is kept per data version (every
        change to the data bumps `_version`): a count and its annotation, or two workers, scan once."""
        if query.predicate is None:
            return self.count_records(query.entity)
        key = (query.entity, query.params["$filter"], self._version)
        total = self._totals.get(key)
        if total is None:
            names = sorted(query.filter_names)
            total = sum(1 for i in self._live_indexes(query.entity)
                        if query.predicate(self._record(query.entity, i, names, annotate=False)))
            if len(self._totals) >= 64:
                self._totals.clear()
            self._totals[key] = total
        return total

    def _delta(self, request: Request, entity: str, params: dict[str, str], prefer: dict[str, str]) -> Response:
        try:
            since = int(params["$deltatoken"].split("!", 1)[0])
        except ValueError:
            since = -1
        if since < self._min_delta_version or since > self._version:
            raise ODataError(400, "0x80044352", "The change tracking token is invalid or has expired; "
                             "a full synchronization is required.")
        query = self._parse_query(entity, params)
        cookie = _read_cookie(params.get("$skiptoken"))
        upto = cookie["v"] if cookie else self._version
        offset = cookie["pos"] if cookie else 0
        changed = sorted({i for v, e, i in self._change_log if e == entity and since < v <= upto})
        page_size = min(int(prefer.get("odata.maxpagesize", MAX_PAGE_SIZE)), MAX_PAGE_SIZE)
        annotations = prefer.get("odata.include-annotations", "")
        annotate = FORMATTED in annotations or "*" in annotations
        targets = LOOKUP_TARGET in annotations or "*" in annotations
        rows: list[dict[str, Any]] = []
        set_name = ENTITY_SETS[entity]
        for index in changed[offset:offset + page_size]:
            if index in self._entities[entity].deleted:
                rows.append({"@odata.context": f"{self.url}{API}/$metadata#{set_name}/$deletedEntity",
                             "id": self.record_id_at(entity, index), "reason": "deleted"})
            else:
                rows.append(self._record(entity, index, query.select, annotate=annotate, targets=targets))
        body: dict[str, Any] = {"@odata.context": f"{self.url}{API}/$metadata#{set_name}({','.join(query.select)})/$delta",
                                "value": rows}
        if offset + page_size < len(changed):
            token = _write_cookie({"pos": offset + page_size, "page": 0, "v": upto}, True)
            body["@odata.nextLink"] = self._next_link or self._link(
                entity, params, **{"$deltatoken": params["$deltatoken"], "$skiptoken": token})
        else:
            body["@odata.deltaLink"] = self._link(entity, params, **{"$deltatoken": _delta_token(upto)})
        return self._odata(body, headers=_applied(prefer, True))

    # -- Dataverse: writes --------------------------------------------------------------------------
    @property
    def person_user_id(self) -> str:
        """The systemuser id of a person in Dynamics (not the sync user): who `update_record` and
        `delete_record` write as."""
        return _guid(self.config.seed, "owner", 0)

    def without_bulk_messages(self, entity: str) -> None:
        """The org lacks CreateMultiple/UpdateMultiple/UpsertMultiple for `entity` (not every table has them)."""
        self.webhooks.bulk_entities.discard(entity)

    def index_of(self, entity: str, record_id: str) -> int | None:
        """The index of a live record by id. Generated ids are a hash of the index: the first miss maps
        every row made so far (created rows map themselves)."""
        record_id = record_id.lower()
        state = self._entities[entity]
        known = self._row_ids[entity]
        if record_id not in known and self._ids_mapped[entity] < state.count:
            for i in range(self._ids_mapped[entity], state.count):
                known.setdefault(self.record_id_at(entity, i), i)
            self._ids_mapped[entity] = state.count
        index = known.get(record_id)
        return None if index is None or index in state.deleted else index

    def _row_values(self, entity: str, index: int) -> dict[str, Any]:
        """Record `index` by logical name, without annotations (what a webhook's Create Target holds)."""
        readable = self._readable[entity]
        record = self._record(entity, index, list(readable), annotate=False)
        return {readable[k].logical_name: v for k, v in record.items() if v is not None}

    def _lookup_targets(self, entity: str) -> dict[str, str]:
        return {a.logical_name: self._lookup_table(entity, a) for a in self._attributes[entity]
                if a.type_name in LOOKUP_TYPES}

    def _create_row(self, commit: _Commit, entity: str, values: dict[str, Any], user_id: str) -> str:
        state = self._entities[entity]
        index = state.count
        record_id = values.pop(f"{entity}id", None) or self.record_id(entity, index)
        if self.index_of(entity, record_id) is not None:
            raise ODataError(412, "0x80040237", "A record with matching key values already exists.")
        row = self._created_row(entity, record_id, values, user_id)
        state.count += 1
        state.overrides[index] = row
        self._row_ids[entity][record_id] = index

        def undo() -> None:
            state.overrides.pop(index, None)
            state.count = index
            self._row_ids[entity].pop(record_id, None)

        commit.undo.append(undo)
        commit.logged.append((entity, index))
        commit.changes.append(Change("Create", entity, record_id, {k: v for k, v in row.items() if v is not None},
                                    user_id))
        return record_id

    def _created_row(self, entity: str, record_id: str, values: dict[str, Any], user_id: str) -> dict[str, Any]:
        """Every created row, whatever creates it (a create or upsert, the *Multiple messages, QualifyLead): the
        columns its creator set, every other one empty but those the server sets, as on the rows it generates
        (key, owner, who and when, an open or active state, not merged, the full name made of its parts)."""
        attributes = self._attributes_by_name(entity)
        now = _iso(datetime.now(UTC))
        server = {"statecode": 0, "merged": False}
        row = {name: None for name in attributes} | {name: v for name, v in server.items() if name in attributes} | {
            f"{entity}id": record_id, "ownerid": user_id, "createdby": user_id, "modifiedby": user_id,
            "createdon": now, "modifiedon": now} | values
        if "fullname" in attributes:
            row["fullname"] = " ".join(part for part in (row.get("firstname"), row.get("lastname")) if part) or None
        return row

    def _update_row(self, commit: _Commit, entity: str, index: int, values: dict[str, Any], user_id: str) -> None:
        """`originatingleadid` is read-only after create (reference D6): an update keeps the stored value."""
        values = {k: v for k, v in values.items() if k != "originatingleadid"}
        state = self._entities[entity]
        before = dict(state.overrides[index]) if index in state.overrides else None
        changed = values | {"modifiedon": _iso(datetime.now(UTC)), "modifiedby": user_id}
        state.overrides.setdefault(index, {}).update(changed)

        def undo() -> None:
            if before is None:
                state.overrides.pop(index, None)
            else:
                state.overrides[index] = before

        commit.undo.append(undo)
        commit.logged.append((entity, index))
        commit.changes.append(Change("Update", entity, self.record_id_at(entity, index), changed, user_id))

    def _delete_row(self, commit: _Commit, entity: str, index: int, user_id: str) -> None:
        state = self._entities[entity]
        record_id = self.record_id_at(entity, index)
        state.deleted.add(index)
        commit.undo.append(lambda: state.deleted.discard(index))
        commit.logged.append((entity, index))
        commit.changes.append(Change("Delete", entity, record_id, {}, user_id))

    def record_id_at(self, entity: str, index: int) -> str:
        """The id of record `index`: generated, or the one given when it was created."""
        override = self._entities[entity].overrides.get(index) or {}
        return override.get(f"{entity}id") or self.record_id(entity, index)

    def committed(self, user_id: str | None = None) -> list[Change]:
        """Every committed row write (Create, Update, Delete), oldest first; only `user_id`'s when given."""
        with self._lock:
            return [c for c in self._committed if user_id is None or c.user_id == user_id]

    def _commit(self, commit: _Commit) -> None:
        for entity, index in commit.logged:
            self._log(entity, index)
        self._committed.extend(commit.changes)
        for change in commit.changes:
            self.webhooks.publish(change, self._lookup_targets(change.entity))

    @staticmethod
    def _rollback(commit: _Commit) -> None:
        for undo in reversed(commit.undo):
            undo()

    def _entity_of(self, entity_set: str) -> str:
        entity = next((e for e, s in ENTITY_SETS.items() if s == entity_set), None)
        if entity is None or entity in self.config.absent_tables:
            raise ODataError(404, SYNTAX, f"Resource not found for the segment '{entity_set}'.")
        return entity

    def _entity_url(self, entity_set: str, record_id: str) -> str:
        return f"{self.url}{API}/{entity_set}({record_id})"

    def _write_request(self, request: Request, user: dict[str, Any], body: bytes) -> Response:
        path = request.path_params["path"]
        headers = {k.lower(): v for k, v in request.headers.items()}
        if path == "$batch" and request.method == "POST":
            return self._batch(headers, body, user)
        with self._lock:
            commit = _Commit()
            try:
                response = self._write(request.method, path, dict(request.query_params), headers, body, user, commit)
            except ODataError:
                self._rollback(commit)
                raise
            self._commit(commit)
        return response

    @staticmethod
    def _json_body(body: bytes) -> dict[str, Any]:
        try:
            payload = json.loads(body or b"{}")
        except ValueError:
            raise ODataError(400, SYNTAX, "The request body is not valid JSON.") from None
        if not isinstance(payload, dict):
            raise ODataError(400, SYNTAX, "The request body must be a JSON object.")
        return payload

    def _write(self, method: str, path: str, params: dict[str, str], headers: dict[str, str], body: bytes,
               user: dict[str, Any], commit: _Commit) -> Response:
        """One write (POST, PATCH or DELETE) inside `commit`."""
        user_id = user["systemuserid"]
        if path in {"serviceendpoints", "sdkmessageprocessingsteps"} and method == "POST":
            payload = self._json_body(body)
            create = self.webhooks.create_endpoint if path == "serviceendpoints" else self.webhooks.create_step
            return self._odata_empty(204, {"OData-EntityId": self._entity_url(path, create(payload))})
        if (match := re.fullmatch(r"(serviceendpoints|sdkmessageprocessingsteps)\(([0-9a-fA-F-]{36})\)", path)) \
                and method == "DELETE":
            self.webhooks.delete(match.group(1), match.group(2))
            return self._odata_empty(204)
        if (match := re.fullmatch(r"leads\(([0-9a-fA-F-]{36})\)/Microsoft\.Dynamics\.CRM\.QualifyLead", path)) \
                and method == "POST":
            return self._qualify_lead(match.group(1).lower(), self._json_body(body), user_id, commit)
        if path == "Merge" and method == "POST":
            return self._merge_action(self._json_body(body), user_id, commit)
        if (match := re.fullmatch(r"(\w+)/Microsoft\.Dynamics\.CRM\.(\w+Multiple)", path)) and method == "POST":
            return self._multiple(self._entity_of(match.group(1)), match.group(2), self._json_body(body), user_id,
                                  commit)
        representation = _prefer(headers.get("prefer", "")).get("return") == "representation"
        if re.fullmatch(r"\w+", path) and method == "POST":
            entity = self._entity_of(path)
            values = validated_values(entity, self._attributes_by_name(entity), self._json_body(body))
            record_id = self._create_row(commit, entity, values, user_id)
            if representation:
                return self._representation(entity, record_id, params, 201)
            return self._odata_empty(204, {"OData-EntityId": self._entity_url(path, record_id)})
        match = re.fullmatch(r"(\w+)\(([0-9a-fA-F-]{36})\)", path)
        if match is None or method not in {"PATCH", "DELETE"}:
            raise ODataError(405 if match else 404, SYNTAX, f"{method} is not supported on '{path}'.")
        entity, record_id = self._entity_of(match.group(1)), match.group(2).lower()
        index = self.index_of(entity, record_id)
        if (method == "DELETE" or headers.get("if-match")) and index is None:
            raise ODataError(404, NOT_FOUND, f"{entity} With Id = {record_id} Does Not Exist")
        if method == "DELETE":
            assert index is not None
            self._delete_row(commit, entity, index, user_id)
            return self._odata_empty(204)
        if index is not None and headers.get("if-none-match") == "*":
            raise ODataError(412, "0x80040237", "A record with matching key values already exists.")
        values = validated_values(entity, self._attributes_by_name(entity), self._json_body(body))
        created = index is None
        if index is None:
            self._create_row(commit, entity, values | {f"{entity}id": record_id}, user_id)
        else:
            values.pop(f"{entity}id", None)  # the URL names the row; the key is not changed
            self._update_row(commit, entity, index, values, user_id)
        if representation:
            return self._representation(entity, record_id, params, 201 if created else 200)
        return self._odata_empty(204, {"OData-EntityId": self._entity_url(match.group(1), record_id)})

    def _qualify_lead(self, lead_id: str, payload: dict[str, Any], user_id: str, commit: _Commit) -> Response:
        """QualifyLead (reference D6): only CreateContact is emulated (no account, no opportunity). The response
        shape is not verified: the created records as a collection of entity references."""
        if payload.get("Status") is None:
            raise ODataError(400, INVALID_ARGUMENT, "The parameter 'Status' is required.")
        created = []
        if payload.get("CreateContact"):
            created.append({"@odata.type": "#Microsoft.Dynamics.CRM.contact",
                            "contactid": self._qualify(commit, lead_id, user_id)})
        else:
            self._close_lead(commit, lead_id, user_id)
        return self._odata({"@odata.context": f"{self.url}{API}/$metadata#Collection(Microsoft.Dynamics.CRM."
                                              "crmbaseentity)", "value": created})

    def _close_lead(self, commit: _Commit, lead_id: str, user_id: str) -> int:
        index = self.index_of("lead", lead_id)
        if index is None:
            raise ODataError(404, NOT_FOUND, f"lead With Id = {lead_id} Does Not Exist")
        if self._row_values("lead", index).get("statecode", 0) != 0:
            raise ODataError(400, INVALID_ARGUMENT, "The lead is not open: it cannot be qualified.")
        self._update_row(commit, "lead", index, {"statecode": 1}, user_id)
        return index

    def _qualify(self, commit: _Commit, lead_id: str, user_id: str) -> str:
        """The lead becomes Qualified and a contact is created from it, its `originatingleadid` set."""
        index = self._close_lead(commit, lead_id, user_id)
        lead = self._row_values("lead", index)
        copied = {k: v for k, v in lead.items() if k in QUALIFY_COPIES}
        return self._create_row(commit, "contact", copied | {"originatingleadid": lead_id, "ownerid": lead.get("ownerid")},
                                user_id)

    def _merge_action(self, payload: dict[str, Any], user_id: str, commit: _Commit) -> Response:
        """Merge (reference D6): the subordinate is deactivated, `merged` and `masterid` set; the target takes
        `UpdateContent`."""
        target, subordinate = payload.get("Target"), payload.get("Subordinate")
        if not isinstance(target, dict) or not isinstance(subordinate, dict):
            raise ODataError(400, INVALID_ARGUMENT, "Target and Subordinate are required.")
        entity = str(target.get("@odata.type", "")).removeprefix("#").removeprefix("Microsoft.Dynamics.CRM.")
        if entity not in ENTITY_SETS or subordinate.get("@odata.type", "").lstrip("#") != f"Microsoft.Dynamics.CRM.{entity}":
            raise ODataError(400, INVALID_ARGUMENT, "Target and Subordinate must be records of one entity "
                                                    "(lead, contact or account).")
        content = {k: v for k, v in (payload.get("UpdateContent") or {}).items() if not k.startswith("@odata.")}
        self._merge(commit, entity, str(target.get(f"{entity}id", "")).lower(),
                    str(subordinate.get(f"{entity}id", "")).lower(),
                    validated_values(entity, self._attributes_by_name(entity), content), user_id)
        return self._odata_empty(204)

    def _merge(self, commit: _Commit, entity: str, master_id: str, subordinate_id: str, content: dict[str, Any],
               user_id: str) -> None:
        master, loser = self.index_of(entity, master_id), self.index_of(entity, subordinate_id)
        if master is None or loser is None:
            raise ODataError(404, NOT_FOUND, f"{entity} With Id = {master_id if master is None else subordinate_id} "
                                             "Does Not Exist")
        if master == loser or self._row_values(entity, loser).get("merged"):
            raise ODataError(400, INVALID_ARGUMENT, "The subordinate record cannot be merged.")
        if content:
            self._update_row(commit, entity, master, content, user_id)
        self._update_row(commit, entity, loser, {"merged": True, "masterid": master_id, "statecode": 1}, user_id)

    def _attributes_by_name(self, entity: str) -> dict[str, AttrSpec]:
        return {a.logical_name: a for a in self._attributes[entity]}

    def _multiple(self, entity: str, message: str, payload: dict[str, Any], user_id: str,
                  commit: _Commit) -> Response:
        """CreateMultiple / UpdateMultiple / UpsertMultiple: all-or-nothing, as for standard tables."""
        if message not in {"CreateMultiple", "UpdateMultiple", "UpsertMultiple"} or \
                entity not in self.webhooks.bulk_entities:
            raise ODataError(400, "0x80040203", f"The message '{message}' is not supported for the entity '{entity}'.")
        targets = payload.get("Targets")
        if not isinstance(targets, list) or not targets:
            raise ODataError(400, "0x80040203", "Targets must be a non-empty list of entities.")
        attributes = self._attributes_by_name(entity)
        primary = f"{entity}id"
        ids: list[str] = []
        for item in targets:
            if not isinstance(item, dict) or item.get("@odata.type") != f"Microsoft.Dynamics.CRM.{entity}":
                raise ODataError(400, "0x80040203", f"Every target needs \"@odata.type\": "
                                                    f"\"Microsoft.Dynamics.CRM.{entity}\".")
            odata_id = re.fullmatch(r"\w+\(([0-9a-fA-F-]{36})\)", str(item.get("@odata.id", "")))
            values = validated_values(entity, attributes, item)
            record_id = values.get(primary) or (odata_id.group(1).lower() if odata_id else None)
            index = self.index_of(entity, record_id) if record_id else None
            if message == "CreateMultiple" or (message == "UpsertMultiple" and index is None):
                ids.append(self._create_row(commit, entity, values | ({primary: record_id} if record_id else {}),
                                            user_id))
            elif index is None:
                raise ODataError(404, NOT_FOUND, f"{entity} With Id = {record_id} Does Not Exist")
            else:
                values.pop(primary, None)
                self._update_row(commit, entity, index, values, user_id)
        if message == "CreateMultiple":
            return self._odata({"@odata.context": f"{self.url}{API}/$metadata#Microsoft.Dynamics.CRM."
                                                  "CreateMultipleResponse", "Ids": ids})
        return self._odata_empty(204)

    def _representation(self, entity: str, record_id: str, params: dict[str, str], status: int) -> Response:
        index = self.index_of(entity, record_id)
        assert index is not None
        query = self._parse_query(entity, {"$select": params["$select"]} if "$select" in params else {})
        record = self._record(entity, index, query.select, annotate=True)
        return self._odata({"@odata.context": f"{self.url}{API}/$metadata#{ENTITY_SETS[entity]}/$entity", **record},
                           status)

    @staticmethod
    def _odata_empty(status: int, headers: dict[str, str] | None = None) -> Response:
        return Response(status_code=status, headers={"OData-Version": "4.0", **(headers or {})})

    def _batch(self, headers: dict[str, str], body: bytes, user: dict[str, Any]) -> Response:
        """`$batch`: parts run in order; a change set is atomic; the batch stops at the first
        failure unless `Prefer: odata.continue-on-error`."""
        parts = batch_parts(headers.get("content-type", ""), body)
        keep_going = "odata.continue-on-error" in _prefer(headers.get("prefer", ""))
        answers: list[tuple[str | None, int, dict[str, str], bytes]] = []
        groups = [list(group) for _, group in itertools.groupby(
            enumerate(parts), key=lambda item: item[1].changeset or f"single-{item[0]}")]
        for group in groups:
            references: dict[str, str] = {}
            group_answers: list[tuple[str | None, int, dict[str, str], bytes]] = []
            with self._lock:
                commit = _Commit()
                try:
                    for _, part in group:
                        path = self._batch_path(part.path, references)
                        target, _, query = path.partition("?")
                        params = dict(p.partition("=")[::2] for p in query.split("&") if p)
                        response = self._write(part.method, target, params, part.headers, part.body, user, commit)
                        entity_id = response.headers.get("OData-EntityId")
                        if part.content_id and entity_id:
                            references[f"${part.content_id}"] = entity_id
                        group_answers.append((part.content_id, response.status_code, dict(
                            (k, v) for k, v in response.headers.items() if k.lower() in {"odata-entityid",
                                                                                      "content-type"}),
                            bytes(response.body)))
                except ODataError as exc:
                    self._rollback(commit)
                    error = pydantic_core.to_json({"error": {"code": exc.code, "message": exc.message}})
                    answers.append((None, exc.status, {"Content-Type": "application/json; odata.metadata=minimal"},
                                    error))
                    if keep_going:
                        continue
                    break
                self._commit(commit)
            answers.extend(group_answers)
        boundary = f"batchresponse_{uuid.uuid4()}"
        return Response(batch_response(boundary, answers), status_code=200,
                        media_type=f"multipart/mixed; boundary={boundary}", headers={"OData-Version": "4.0"})

    def _batch_path(self, target: str, references: dict[str, str]) -> str:
        """A part's request target relative to the API root; `$n` refers to an earlier part."""
        if target.startswith("$"):
            head, _, rest = target.partition("/")
            if head not in references:
                raise ODataError(400, SYNTAX, f"Content-ID Reference: '{head}' does not exist in the batch context.")
            target = references[head] + (f"/{rest}" if rest else "")
        for prefix in (f"{self.url}{API}/", f"{API}/"):
            if target.startswith(prefix):
                return target[len(prefix):]
        return target


def _names(full_name: str) -> dict[str, str]:
    """A systemuser's `fullname`, `firstname` and `lastname` (Dynamics composes the full name from the parts)."""
    first, _, last = full_name.rpartition(" ")
    return {"fullname": full_name, "firstname": first or None, "lastname": last}


def _label(text: str | None) -> dict[str, Any]:
    if text is None:
        return {"LocalizedLabels": [], "UserLocalizedLabel": None}
    label = {"Label": text, "LanguageCode": 1033, "IsManaged": True, "MetadataId": _guid("label", text),
             "HasChanged": None}
    return {"LocalizedLabels": [label], "UserLocalizedLabel": label}


def _prefer(header: str) -> dict[str, str]:
    """`Prefer` as a dict; values unquoted. Several preferences may share one header (RFC 7240)."""
    out: dict[str, str] = {}
    for part in re.split(r",(?=(?:[^\"]*\"[^\"]*\")*[^\"]*$)", header):
        name, _, value = part.strip().partition("=")
        if name:
            out[name.strip()] = value.strip().strip('"')
    return out


def _applied(prefer: dict[str, str], tracking: bool) -> dict[str, str]:
    applied = [f"odata.maxpagesize={prefer['odata.maxpagesize']}"] if "odata.maxpagesize" in prefer else []
    if "odata.include-annotations" in prefer:
        applied.append(f'odata.include-annotations="{prefer["odata.include-annotations"]}"')
    if tracking:
        applied.append("odata.track-changes")
    return {"Preference-Applied": ",".join(applied)} if applied else {}


def _write_cookie(state: dict[str, int], tracking: bool) -> str:
    paging = base64.urlsafe_b64encode(json.dumps(state).encode()).decode()
    return f'<cookie pagenumber="{state["page"]}" pagingcookie="{paging}" istracking="{tracking}" />'


def _read_cookie(token: str | None) -> dict[str, int] | None:
    if not token:
        return None
    found = re.search(r'pagingcookie="([^"]+)"', token)
    try:
        return json.loads(base64.urlsafe_b64decode(found.group(1))) if found else None
    except ValueError:
        raise ODataError(400, "0x80060888", "The $skiptoken is not valid.") from None


def _delta_token(version: int) -> str:
    return f"{version}!{datetime.now(UTC).strftime('%m/%d/%Y %H:%M:%S')}"


__all__ = ["DynamicsEmulator", "DynamicsEmulatorConfig", "EmulatedApp", "EmulatedUser"]
