"""Pydantic models shared across the bot: what crosses a boundary (Redis, jobs, modules).

Secrets never live in these models in clear except `Credentials`, which the store
encrypts as a whole before it touches Redis.
"""

from __future__ import annotations

import time
import uuid
from enum import StrEnum

from pydantic import BaseModel, Field, SecretStr

from bot.custom_object_models import CustomObjectChange, CustomObjectPlan, RefusedColumn


def new_id() -> str:
    return uuid.uuid4().hex[:16]


def now() -> float:
    return time.time()


class Entity(StrEnum):
    lead = "lead"
    contact = "contact"
    account = "account"
    opportunity = "opportunity"  # one way, with its contact roles (bot/sync/opportunities.py)

    @property
    def entity_set(self) -> str:
        return "opportunities" if self is Entity.opportunity else f"{self.value}s"

    @property
    def primary_id(self) -> str:
        return f"{self.value}id"

    @property
    def marketo_id_field(self) -> str:
        """The Marketo field holding the Dataverse GUID; the lookup key of every write."""
        return {"lead": "dynamicsLeadId", "contact": "dynamicsContactId", "account": "externalCompanyId",
                "opportunity": "externalOpportunityId"}[self.value]


SYNC_FILTER_ATTRIBUTE = "new_synctomkto"
MODIFIED_ON = "modifiedon"  # when a Dataverse record last changed (ISO 8601 UTC)
MODIFIED_BY = "_modifiedby_value"  # who last modified a Dataverse record (a lookup, read as `_name_value`)


class Credentials(BaseModel):
    """What the user typed in Step 1. Stored only encrypted (see store.save_credentials)."""

    username: str
    password: SecretStr = SecretStr("")
    url: str
    client_id: str | None = None
    client_secret: SecretStr | None = None

    @property
    def confidential(self) -> bool:
        return bool(self.client_id and self.client_secret and self.client_secret.get_secret_value())

    def to_plain(self) -> dict[str, str | None]:
        return {
            "username": self.username,
            "password": self.password.get_secret_value(),
            "url": self.url,
            "client_id": self.client_id,
            "client_secret": self.client_secret.get_secret_value() if self.client_secret else None,
        }


class AttributeMeta(BaseModel):
    """One Dataverse attribute, as the field picker and the mapping need it."""

    logical_name: str
    display_name: str
    attribute_type: str  # AttributeTypeName.Value, e.g. "StringType", "MoneyType"
    format: str | None = None  # String FormatName: Email, Text, TextArea, Url, Phone ...
    datetime_behavior: str | None = None  # UserLocal, DateOnly, TimeZoneIndependent
    is_custom: bool = False
    valid_for_update: bool = True  # IsValidForUpdate: false for read-only columns
    source_type: int | None = None  # SourceType: 0 simple, 1 calculated, 2 rollup

    @property
    def read_name(self) -> str:
        """The property name in record JSON: lookups are read as `_name_value`."""
        if self.attribute_type in {"LookupType", "OwnerType", "CustomerType"}:
            return f"_{self.logical_name}_value"
        return self.logical_name

    @property
    def label(self) -> str:
        return f"{self.display_name} ({self.logical_name})"


class EntityMetadata(BaseModel):
    entity: Entity
    entity_set: str
    primary_id: str
    change_tracking: bool = True
    attributes: list[AttributeMeta]

    def attribute(self, logical_name: str) -> AttributeMeta | None:
        return next((a for a in self.attributes if a.logical_name == logical_name), None)


class MarketoField(BaseModel):
    """A Marketo lead (or company) field, as planned or as described by Marketo."""

    name: str
    display_name: str
    data_type: str
    description: str = ""


class Direction(StrEnum):
    """Which way one field syncs. Lead and contact fields sync both ways by default; accounts one way."""

    both = "both"
    to_marketo = "to_marketo"  # Dynamics → Marketo only
    to_dynamics = "to_dynamics"  # Marketo → Dynamics only


class Side(StrEnum):
    """The system whose value wins a collision (the same field changed on both sides in one cycle)."""

    marketo = "marketo"
    dynamics = "dynamics"


class FieldMapping(BaseModel):
    source: str  # Dataverse logical name
    read_name: str  # property name in the record JSON
    attribute_type: str
    datetime_behavior: str | None = None
    marketo_name: str
    marketo_type: str
    standard: bool  # a Marketo standard field (default mapping) rather than one we create
    # Plans approved before two-way sync existed were one way: that stays their meaning.
    direction: Direction = Direction.to_marketo
    winner: Side | None = None  # None: the entity's rule (`bot.sync.directions.winner`)
    one_way_reason: str | None = None  # why Marketo cannot write this field to Dynamics, when it cannot


class EntityPlan(BaseModel):
    entity: Entity
    mappings: list[FieldMapping]
    id_field: str  # Marketo lookup field holding the Dataverse GUID
    filter_attribute: str | None = None  # "new_synctomkto" when detected
    record_count: int | None = None
    role_count: int | None = None  # opportunities: their contact roles in Dynamics (bot/sync/opportunities.py)
    change_tracking: bool = True  # off: incremental syncs read by a `modifiedon` watermark (no deletes seen)
    # Read, never written as fields: who a person is (qualified from a lead, merged away, its account); `bot.sync.identity`
    identity_columns: list[str] = Field(default_factory=list)

    @property
    def writes_back(self) -> bool:
        """Does any field sync Marketo → Dynamics?"""
        return any(m.direction != Direction.to_marketo for m in self.mappings)
    # Read names of the lookups that link a record in Marketo (`bot.sync.links`): the person's account
    # (`_parentcustomerid_value`, `_parentaccountid_value`) and the record's owner (`_ownerid_value`).
    company_lookup: str | None = None
    owner_lookup: str | None = None
    # Opportunities: their primary contact (`_parentcontactid_value`), read with them for their roles' isPrimary
    # (`bot.sync.opportunities`); None in plans made before it was read, whose writer reads it again.
    primary_contact_lookup: str | None = None

    @property
    def select(self) -> list[str]:
        """The `$select` list for reading this entity. A plan that writes back also reads who last
        modified each record: changes made by the sync user are not sent to Marketo (no echo)."""
        names = [self.entity.primary_id] + [m.read_name for m in self.mappings]
        if self.filter_attribute:
            names.append(self.filter_attribute)
        if self.writes_back:
            names.append(MODIFIED_BY)
        names += [name for name in (self.company_lookup, self.owner_lookup, self.primary_contact_lookup) if name]
        return list(dict.fromkeys(names + self.identity_columns))


class FieldPlan(BaseModel):
    entities: list[EntityPlan]
    fields_to_create: list[MarketoField] = Field(default_factory=list)
    fields_existing: list[str] = Field(default_factory=list)
    owners: int | None = None  # Dynamics users who may own synced records (Marketo sales persons); None: not counted
    bulk_import_min_records: int | None = None  # BULK_IMPORT_MIN_RECORDS when planned: shows each entity's path
    custom_objects: list[CustomObjectPlan] = Field(default_factory=list)  # custom tables, one way (#14.6)
    custom_refused: list[RefusedColumn] = Field(default_factory=list)  # tables chosen that cannot be synced, why

    def for_entity(self, entity: Entity) -> EntityPlan | None:
        return next((p for p in self.entities if p.entity == entity), None)


class FlowState(StrEnum):
    credentials = "credentials"  # Step 1 in progress
    fields = "fields"  # credentials verified; Step 2
    confirm = "confirm"  # plan saved; Step 3
    awaiting_approval = "awaiting_approval"
    approved = "approved"
    syncing = "syncing"
    paused = "paused"
    synced = "synced"
    failed = "failed"
    cancelled = "cancelled"


class CheckResult(BaseModel):
    name: str
    ok: bool
    detail: str = ""
    fix: str = ""


class Connection(BaseModel):
    """One Dynamics org being connected to this team's Marketo instance."""

    id: str = Field(default_factory=new_id)
    team_id: str
    requester: str
    state: FlowState = FlowState.credentials
    dynamics_url: str | None = None
    organization_id: str | None = None  # WhoAmI's OrganizationId: the org's identity, whatever its URL
    username: str | None = None
    sync_user_id: str | None = None
    sync_user_name: str | None = None
    checklist: list[CheckResult] = Field(default_factory=list)
    selected: dict[str, list[str]] = Field(default_factory=dict)  # entity -> logical names
    custom_tables: list[str] = Field(default_factory=list)  # custom Dataverse tables to sync one way (#14.6)
    # The columns chosen per custom table (logical names); a table not named here syncs every syncable column.
    custom_columns: dict[str, list[str]] = Field(default_factory=dict)
    # The admin's choices for the next plan, per entity -> logical name; a field not named syncs both ways
    # (lead, contact) and its collisions follow the entity's rule. A plan carries its own copy per field.
    directions: dict[str, dict[str, Direction]] = Field(default_factory=dict)
    winners: dict[str, dict[str, Side]] = Field(default_factory=dict)
    plan: FieldPlan | None = None
    duplicate_count: int | None = None  # addresses shared by more than one record
    duplicate_records: int | None = None  # records carrying one of those addresses
    duplicate_examples: list[tuple[str, int]] = Field(default_factory=list)
    notify_email: str | None = None
    approval_id: str | None = None
    run_id: str | None = None
    error: str | None = None  # plain-language reason the last step failed (e.g. approval effects)
    # A change of fields after go-live: the proposed selection and plan, its approval, and the run that
    # writes the added columns into existing records (the connection keeps syncing meanwhile).
    pending_selection: dict[str, list[str]] = Field(default_factory=dict)
    pending_plan: FieldPlan | None = None
    change_approval_id: str | None = None
    backfill_run_id: str | None = None
    created_at: float = Field(default_factory=now)
    updated_at: float = Field(default_factory=now)


class DynamicsLock(BaseModel):
    """The Dynamics org a Marketo instance is connected to. Marketo cannot be re-pointed to another
    org, so the first approved connection holds it for every Slack team sharing the instance.

    `organization_id` is None only for a lock written before locks carried one (compared by URL)."""

    organization_id: str | None = None
    url: str
    team_id: str
    connection_id: str | None = None
    locked_at: float | None = None


class ApprovalStatus(StrEnum):
    pending = "pending"
    approved = "approved"
    rejected = "rejected"
    expired = "expired"
    cancelled = "cancelled"


class EffectsState(StrEnum):
    """What became of the work an approval triggers (schema change, URL lock, enqueue)."""

    pending = "pending"  # the approval is not complete yet
    running = "running"  # claimed by exactly one caller
    done = "done"
    failed = "failed"  # a lead may retry


class ApprovalKind(StrEnum):
    sync = "sync"  # Step 3's Begin sync: the initial sync
    fields_change = "fields_change"  # a change of the field selection after go-live


class DirectionChange(BaseModel):
    """A field's direction and collision winner in a change of fields: an added field's (`before` None),
    or a kept field's that changes."""

    before: FieldMapping | None = None
    after: FieldMapping


class FieldsChange(BaseModel):
    """What a change of fields after go-live adds and removes, per entity (Dataverse logical names), and
    the directions of the added fields and of the kept fields whose direction or winner it changes."""

    added: dict[str, list[str]] = Field(default_factory=dict)
    removed: dict[str, list[str]] = Field(default_factory=dict)
    directions: dict[str, list[DirectionChange]] = Field(default_factory=dict)
    fields_to_create: list[MarketoField] = Field(default_factory=list)  # irreversible
    # Custom tables (one way): tables added (their custom object types made), removed (their custom objects
    # stay in Marketo; syncing stops), and kept with other columns.
    objects_added: list[CustomObjectPlan] = Field(default_factory=list)
    objects_removed: list[CustomObjectPlan] = Field(default_factory=list)
    objects_changed: list[CustomObjectChange] = Field(default_factory=list)
    objects_refused: list[RefusedColumn] = Field(default_factory=list)  # tables chosen that cannot be synced

    @property
    def empty(self) -> bool:
        redirected = any(d.before is not None for changes in self.directions.values() for d in changes)
        custom = self.objects_added or self.objects_removed or self.objects_changed
        return not any(self.added.values()) and not any(self.removed.values()) and not redirected and not custom

    def objects_to_make(self) -> list[CustomObjectPlan]:
        """The custom objects the approval makes or extends in Marketo; their tables are then read in full."""
        return [*self.objects_added, *(c.plan for c in self.objects_changed if c.added)]

    def backfill_fields(self) -> dict[str, list[str]]:
        """The entities with added columns, and those columns: what the backfill writes."""
        return {entity: names for entity, names in self.added.items() if names}


class EffectStep(StrEnum):
    """One piece of the work an approval triggers, recorded on the approval once done so that a
    retry after a failure runs only what is left."""

    org_locked = "org_locked"  # the Marketo instance is locked to the connection's Dynamics org
    fields_created = "fields_created"  # every planned Marketo field exists
    sync_started = "sync_started"  # the initial run is created and its jobs enqueued
    messages_updated = "messages_updated"  # every copy of the request shows the decision
    requester_told = "requester_told"


class Approval(BaseModel):
    id: str = Field(default_factory=new_id)
    kind: ApprovalKind = ApprovalKind.sync
    fields_change: FieldsChange | None = None  # kind fields_change: what it changes
    team_id: str
    connection_id: str
    requester: str
    status: ApprovalStatus = ApprovalStatus.pending
    required: int = 1
    approvers: list[str] = Field(default_factory=list)
    decided_by: str | None = None
    reason: str | None = None
    created_at: float = Field(default_factory=now)
    expires_at: float
    decided_at: float | None = None
    messages: list[tuple[str, str]] = Field(default_factory=list)  # (channel, ts)
    effects_state: EffectsState = EffectsState.pending
    effects_error: str | None = None
    effects_started_at: float | None = None
    effects_done: list[EffectStep] = Field(default_factory=list)
    fields_created: list[str] = Field(default_factory=list)  # Marketo fields this approval created
    fields_sent: list[str] = Field(default_factory=list)  # asked of Marketo, its answer not recorded yet
    fields_unknown: bool = False  # an attempt's answer was lost: fields may exist because of it

    def done(self, step: EffectStep) -> bool:
        return step in self.effects_done

    def with_step(self, step: EffectStep) -> Approval:
        """This approval with `step` recorded as done (once)."""
        if self.done(step):
            return self
        return self.model_copy(update={"effects_done": [*self.effects_done, step]})

    def sending_fields(self, names: list[str]) -> Approval:
        """About to ask Marketo to create `names`: until the answer is recorded they may exist. Names
        still recorded as sent belong to an attempt whose answer was lost (it died mid-way)."""
        return self.model_copy(update={"fields_sent": list(names),
                                       "fields_unknown": self.fields_unknown or bool(self.fields_sent)})

    def fields_answered(self, created: list[str]) -> Approval:
        """Marketo answered: it created `created`."""
        return self.model_copy(update={"fields_created": list(dict.fromkeys([*self.fields_created, *created])),
                                       "fields_sent": []})

    @property
    def may_have_created_fields(self) -> bool:
        """True once a Marketo field may exist because of this approval (they cannot be deleted)."""
        return bool(self.fields_created or self.fields_sent or self.fields_unknown)


class RunStatus(StrEnum):
    queued = "queued"
    running = "running"
    paused = "paused"
    cancelled = "cancelled"
    finished = "finished"
    failed = "failed"


class Counts(BaseModel):
    """Record counters: kept per entity on a run, and carried by every booked batch."""

    read: int = 0
    filtered_out: int = 0
    created: int = 0
    updated: int = 0
    skipped: int = 0
    failed: int = 0
    imported: int = 0  # written by Bulk Import, which does not say whether it created or updated

    def add(self, other: Counts) -> None:
        for name in Counts.model_fields:
            setattr(self, name, getattr(self, name) + getattr(other, name))


class EntityProgress(Counts):
    entity: Entity
    estimated: int = 0
    done: bool = False
    parts_uploaded: int = 0  # Bulk Import: parts in Marketo's queue or done
    parts_done: int = 0

    @property
    def parts_importing(self) -> int:
        return self.parts_uploaded - self.parts_done

    @property
    def written(self) -> int:
        return self.created + self.updated + self.imported + self.skipped + self.failed


class SyncRun(BaseModel):
    id: str = Field(default_factory=new_id)
    team_id: str
    connection_id: str
    requester: str
    kind: str = "initial"
    status: RunStatus = RunStatus.queued
    entities: list[EntityProgress] = Field(default_factory=list)
    started_at: float = Field(default_factory=now)
    finished_at: float | None = None
    api_calls: int = 0
    message: str | None = None  # why it paused/failed, in plain language
    progress_message: tuple[str, str] | None = None  # (channel, ts) of the live progress post
    backfill_fields: dict[str, list[str]] = Field(default_factory=dict)  # kind "backfill": entity -> added columns


class BrakeStatus(StrEnum):
    held = "held"  # waiting for a team lead; cycles of the entity write nothing
    approved = "approved"  # the next cycle writes the held changes past the brake, once
    discarded = "discarded"  # the next cycle skips the held changes and advances past them


class HeldChange(BaseModel):
    """One example of what a braked cycle would have done to a Marketo person."""

    id: str
    email: str | None = None
    fields: list[str] = Field(default_factory=list)  # the fields whose values change; empty for a delete
    deleted: bool = False


class MassChangeHold(BaseModel):
    """An incremental cycle of one entity that stopped before writing a mass change (the brake)."""

    team_id: str
    connection_id: str
    entity: Entity
    status: BrakeStatus = BrakeStatus.held
    limit: int
    deletes: int = 0
    overwrites: int = 0
    examples: list[HeldChange] = Field(default_factory=list)
    held_at: float = Field(default_factory=now)
    decided_by: str | None = None
    decided_at: float | None = None
    messages: list[tuple[str, str]] = Field(default_factory=list)  # (channel, ts) of the request posts


class AuditEntry(BaseModel):
    at: float = Field(default_factory=now)
    actor: str
    action: str
    connection_id: str | None = None
    detail: str = ""
