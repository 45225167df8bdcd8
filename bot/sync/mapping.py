"""The field plan: which Dataverse attribute goes to which Marketo field, and of what type.

Pure functions over `bot.models`; no network. The default mapping follows Marketo's own
Dynamics sync (reference D5); everything else becomes a custom Marketo field named
`dyn<Entity><CamelCase>` so a plan is stable from one run to the next.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Collection, Iterable, Mapping

from pydantic import BaseModel

from bot.errors import BotError
from bot.models import (
    SYNC_FILTER_ATTRIBUTE,
    AttributeMeta,
    Direction,
    Entity,
    EntityMetadata,
    EntityPlan,
    FieldMapping,
    FieldPlan,
    MarketoField,
    Side,
)
from bot.sync.directions import choose
from bot.sync.identity import ACCOUNT_DELETED_FIELD, identity_columns
from bot.sync.links import plan_lookups
from bot.sync.opportunities import primary_contact_lookup

_PERSON_MAPPING: dict[str, str] = {
    "emailaddress1": "email",
    "firstname": "firstName",
    "lastname": "lastName",
    "companyname": "company",
    "telephone1": "phone",
    "jobtitle": "title",
    "donotbulkemail": "unsubscribed",
    "mobilephone": "mobilePhone",
    "address1_line1": "address",
    "address1_city": "city",
    "address1_stateorprovince": "state",
    "address1_postalcode": "postalCode",
    "address1_country": "country",
    "websiteurl": "website",
    "industry": "industry",
    "revenue": "annualRevenue",
    "numberofemployees": "numberOfEmployees",
    "leadsourcecode": "leadSource",
}

DEFAULT_MAPPING: dict[Entity, dict[str, str]] = {
    Entity.lead: dict(_PERSON_MAPPING),
    # A contact has no companyname: its company is the parent account (a Customer lookup, whose
    # formatted value is the account's name). Attributes a contact lacks are simply never selected.
    Entity.contact: {
        **{k: v for k, v in _PERSON_MAPPING.items() if k != "companyname"},
        "parentcustomerid": "company",
    },
    Entity.account: {
        "name": "company",
        "websiteurl": "website",
        "telephone1": "mainPhone",
        "address1_line1": "billingStreet",
        "address1_city": "billingCity",
        "address1_stateorprovince": "billingState",
        "address1_postalcode": "billingPostalCode",
        "address1_country": "billingCountry",
        "industrycode": "industry",
        "revenue": "annualRevenue",
        "numberofemployees": "numberOfEmployees",
    },
    # Marketo's standard opportunity fields (its API cannot create others). Company and owner links: bot/sync/links.py.
    Entity.opportunity: {
        "name": "name",
        "description": "description",
        "estimatedvalue": "amount",
        "closeprobability": "probability",
        "estimatedclosedate": "closeDate",
        "stepname": "stage",
        "createdon": "externalCreatedDate",
    },
}

# Lead and contact are Marketo persons (custom fields can be created); an account is a Marketo company.
PERSON_ENTITIES: frozenset[Entity] = frozenset({Entity.lead, Entity.contact})
EMAIL_ATTRIBUTE = "emailaddress1"
# Always synced when the table has them: a person's email; an opportunity's name (Marketo requires it).
ALWAYS_SELECTED: dict[Entity, tuple[str, ...]] = {
    Entity.lead: (EMAIL_ATTRIBUTE,), Entity.contact: (EMAIL_ATTRIBUTE,),
    Entity.opportunity: ("name",),
}

MAX_FIELD_NAME = 50
MAX_DISPLAY_NAME = 50  # Marketo does not document one; 50 keeps names readable in its field list

UNSUPPORTED_TYPES: frozenset[str] = frozenset({
    "VirtualType", "PartyListType", "FileType", "ImageType", "CalendarRulesType",
    "ManagedPropertyType", "EntityNameType",
})

_FIXED_TYPES: dict[str, str] = {
    "MemoType": "string",
    "IntegerType": "integer",
    "BigIntType": "string",
    "DecimalType": "float",
    "DoubleType": "float",
    "MoneyType": "currency",
    "BooleanType": "boolean",
    "PicklistType": "string",
    "StateType": "string",
    "StatusType": "string",
    "MultiSelectPicklistType": "string",
    "LookupType": "string",
    "OwnerType": "string",
    "CustomerType": "string",
    "UniqueidentifierType": "string",
}

_STRING_FORMATS: dict[str, str] = {"email": "email", "phone": "phone", "url": "url"}

ACCOUNT_STANDARD_ONLY = (
    "Accounts sync only to Marketo's standard company fields: Marketo's REST API cannot create "
    "company fields, so other account attributes cannot be selected."
)


OPPORTUNITY_STANDARD_ONLY = (
    "Opportunities sync one way (Dynamics → Marketo) with their contact roles, to Marketo's standard "
    "opportunity fields only: Marketo's REST API cannot create opportunity fields, so other opportunity "
    "attributes cannot be selected."
)


def standard_only_note(entity: Entity) -> str | None:
    """Why the picker offers only some fields of an entity (None: any syncable field can be picked)."""
    return {Entity.account: ACCOUNT_STANDARD_ONLY, Entity.opportunity: OPPORTUNITY_STANDARD_ONLY}.get(entity)


class PlanError(BotError):
    """A selection that cannot become a plan (unknown, unsupported or non-standard account field)."""


class SyncFilterStatus(BaseModel):
    applies: bool
    display_name: str | None = None
    lookalike: AttributeMeta | None = None
    message: str


def how_to_track_changes(entity: Entity) -> str:
    """Where a Dynamics admin turns change tracking on for one table (without it, incremental syncs
    read by last-modified time and cannot see deletes)."""
    return (f"Power Apps → Tables → {entity.value.capitalize()} → Properties → Advanced options → "
            "tick “Track changes” → Save")


def is_syncable(attr: AttributeMeta) -> bool:
    """True for the attribute types we know how to write to Marketo; never for UNSUPPORTED_TYPES."""
    return attr.attribute_type in _FIXED_TYPES or attr.attribute_type in {"StringType", "DateTimeType"}


def marketo_type(attr: AttributeMeta) -> str:
    """The Marketo `dataType` for an attribute.

    Memo becomes `string`, not `text`: Marketo's create-field API does not list `text` in its
    `dataType` enum (reference C8), so long text is trimmed to 255 characters by the converter.
    BigInt becomes `string` because Marketo's integer range is not documented.
    Raises PlanError for an unsupported type (see `is_syncable`).
    """
    kind = attr.attribute_type
    if kind == "StringType":
        return _STRING_FORMATS.get((attr.format or "").lower(), "string")
    if kind == "DateTimeType":
        return "date" if attr.datetime_behavior == "DateOnly" else "datetime"
    if not is_syncable(attr):
        raise PlanError(f"{attr.label} is a {kind.removesuffix('Type')} column, which cannot be synced to Marketo.")
    return _FIXED_TYPES[kind]


def _camel(logical_name: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in re.split(r"[^A-Za-z0-9]+", logical_name) if part)


def _short_hash(*parts: str) -> str:
    return hashlib.sha1("\x00".join(parts).encode(), usedforsecurity=False).hexdigest()[:6]


def _fit(base: str, suffix: str, limit: int = MAX_FIELD_NAME) -> str:
    return base[: limit - len(suffix)] + suffix


def marketo_field_name(entity: Entity, logical_name: str, taken: set[str]) -> str:
    """A legal, stable Marketo API name for a custom field: `new_region` on lead → `dynLeadNewRegion`.

    Letters, digits and `_` only, starts with a letter, at most 50 characters (longer names are cut
    and get a hash suffix of the logical name), and not in `taken` (compared case-insensitively;
    a collision gets a stable hash suffix). `taken` is not modified.
    """
    name = f"dyn{entity.value.capitalize()}{_camel(logical_name)}"
    if len(name) > MAX_FIELD_NAME:
        name = _fit(name, "_" + _short_hash(entity.value, logical_name))
    lowered = {t.lower() for t in taken}
    attempt = 0
    candidate = name
    while candidate.lower() in lowered:
        attempt += 1
        candidate = _fit(name, "_" + _short_hash(entity.value, logical_name, str(attempt)))
    return candidate


def _display_name(entity: Entity, attr: AttributeMeta, taken: set[str]) -> str:
    """`Dyn Lead Region`: no special characters (Marketo refuses them), unique, ≤ MAX_DISPLAY_NAME."""
    words = re.sub(r"[^A-Za-z0-9 ]+", " ", attr.display_name).split() or [_camel(attr.logical_name)]
    name = _fit(f"Dyn {entity.value.capitalize()} {' '.join(words)}", "", MAX_DISPLAY_NAME).strip()
    attempt = 1
    candidate = name
    while candidate.lower() in taken:
        attempt += 1
        candidate = _fit(name, f" {attempt}", MAX_DISPLAY_NAME)
    return candidate


def default_selection(metadata: EntityMetadata) -> list[str]:
    """The default-mapped attributes that exist (and can be synced) on this org."""
    return [
        name for name in DEFAULT_MAPPING[metadata.entity]
        if (attr := metadata.attribute(name)) is not None and is_syncable(attr)
    ]


def selectable(metadata: EntityMetadata) -> list[AttributeMeta]:
    """The attributes the field picker offers: syncable ones; for accounts, only default-mapped ones."""
    defaults = DEFAULT_MAPPING[metadata.entity]
    return [
        a for a in metadata.attributes
        if is_syncable(a) and (metadata.entity in PERSON_ENTITIES or a.logical_name in defaults)
    ]


def _squash(text: str) -> str:
    return re.sub(r"[\s_\-]+", "", text).lower()


def _looks_like_filter(attr: AttributeMeta) -> bool:
    return any(
        key in _squash(text)
        for text in (attr.display_name, attr.logical_name)
        for key in ("synctomkto", "synctomarketo")
    )


def detect_sync_filter(metadata: EntityMetadata) -> SyncFilterStatus:
    """Whether Marketo's custom sync filter applies to this entity (reference B5, D4)."""
    entity = metadata.entity.value
    attr = metadata.attribute(SYNC_FILTER_ATTRIBUTE)
    if attr is not None and attr.attribute_type == "BooleanType":
        return SyncFilterStatus(
            applies=True, display_name=attr.display_name,
            message=(f"Sync filter detected on {entity}: “{attr.display_name}” ({SYNC_FILTER_ATTRIBUTE}). "
                     "Records set to No are left out; Yes or empty sync."),
        )
    if attr is not None:
        kind = attr.attribute_type.removesuffix("Type")
        return SyncFilterStatus(
            applies=False, display_name=attr.display_name, lookalike=attr,
            message=(f"{entity}.{SYNC_FILTER_ATTRIBUTE} exists but is a {kind} column, not Two Options "
                     "(Yes/No), so it is not used as the sync filter and every record syncs. "
                     "Recreate it as a Two Options field to filter."),
        )
    lookalike = next((a for a in metadata.attributes if _looks_like_filter(a)), None)
    if lookalike is not None:
        return SyncFilterStatus(
            applies=False, lookalike=lookalike,
            message=(f"“{lookalike.display_name}” ({lookalike.logical_name}) on {entity} looks like a sync "
                     f"filter but is not used: Marketo's filter must be a Two Options field whose logical name "
                     f"is exactly {SYNC_FILTER_ATTRIBUTE} (publisher prefix `new`). Every record syncs."),
        )
    return SyncFilterStatus(
        applies=False,
        message=f"No sync filter ({SYNC_FILTER_ATTRIBUTE}) on {entity}: every record syncs.",
    )


def passes_sync_filter(record: dict, filter_attribute: str | None) -> bool:
    """Marketo's semantics: only an explicit False excludes a record; absent or None syncs."""
    return filter_attribute is None or record.get(filter_attribute) is not False


def _rank(attr: AttributeMeta, query: str) -> int | None:
    logical, display = attr.logical_name.lower(), attr.display_name.lower()
    if query in (logical, display):
        return 0
    if logical.startswith(query) or display.startswith(query):
        return 1
    words = re.split(r"[\s_\-()]+", f"{display} {logical}")
    if any(w.startswith(query) for w in words if w):
        return 2
    if query in logical or query in display:
        return 3
    return None


def _alpha(attr: AttributeMeta) -> tuple[str, str]:
    return attr.display_name.lower(), attr.logical_name


def search_attributes(
    attributes: list[AttributeMeta], query: str, limit: int = 100, *,
    selected: Iterable[str] = (), entity: Entity | None = None,
) -> list[AttributeMeta]:
    """Best matches first: exact, prefix, word-prefix, substring (case-insensitive), at most `limit`.

    An empty query lists `selected` first (in its order), then the entity's default-mapped
    attributes, then the rest alphabetically.
    """
    q = query.strip().lower()
    if not q:
        order = {name: i for i, name in enumerate(dict.fromkeys(selected))}
        defaults = DEFAULT_MAPPING.get(entity, {}) if entity else {}

        def key(a: AttributeMeta) -> tuple:
            if a.logical_name in order:
                return (0, order[a.logical_name], "", "")
            return (1 if a.logical_name in defaults else 2, 0, *_alpha(a))

        return sorted(attributes, key=key)[:limit]
    ranked = [(r, a) for a in attributes if (r := _rank(a, q)) is not None]
    ranked.sort(key=lambda item: (item[0], *_alpha(item[1])))
    return [a for _, a in ranked[:limit]]


DELETED_FIELD = MarketoField(
    name="dynamicsDeleted", display_name="Dynamics Deleted", data_type="boolean",
    description="true when the record was deleted in Dynamics (the Marketo person is kept)",
)


def _id_field(entity: Entity) -> MarketoField:
    return MarketoField(
        name=entity.marketo_id_field,
        display_name=f"Dynamics {entity.value.capitalize()} Id",
        data_type="string",
        description=f"from Dynamics {entity.value}.{entity.primary_id} (lookup key of this sync)",
    )


def _resolve(metadata: EntityMetadata, names: Collection[str]) -> list[AttributeMeta]:
    entity = metadata.entity
    wanted = list(dict.fromkeys(names))
    for name in reversed(ALWAYS_SELECTED.get(entity, ())):
        if name not in wanted and metadata.attribute(name):
            wanted.insert(0, name)
    attrs = []
    for name in wanted:
        attr = metadata.attribute(name)
        if attr is None:
            raise PlanError(f"The field {name} is no longer on {entity.value} in Dynamics. "
                            "Press “Refresh fields from Dynamics” and select the fields again.")
        if not is_syncable(attr):
            raise PlanError(f"{attr.label} on {entity.value} is a {attr.attribute_type.removesuffix('Type')} "
                            "column, which cannot be synced to Marketo. Remove it from the selection.")
        if entity not in PERSON_ENTITIES and name not in DEFAULT_MAPPING[entity]:
            raise PlanError(f"{attr.label}: {standard_only_note(entity)}")
        attrs.append(attr)
    return attrs


def build_plan(
    metadata: dict[Entity, EntityMetadata],
    selected: dict[Entity, list[str]],
    existing_marketo_fields: set[str],
    counts: dict[Entity, int] | None = None,
    *,
    directions: Mapping[str, Mapping[str, Direction]] | None = None,
    winners: Mapping[str, Mapping[str, Side]] | None = None,
) -> FieldPlan:
    """The plan for the entities with a non-empty selection (and metadata), in lead, contact, account order.

    `directions` and `winners` (entity -> logical name) are the admin's choices; a field not named
    syncs both ways (lead, contact) with the entity's collision rule, or one way when Marketo cannot
    write it (`bot.sync.directions.one_way_reason`; asking for Marketo → Dynamics only is refused).

    Custom names are derived in logical-name order so the same selection always yields the same
    names; a custom field already in Marketo (any case) is reused under its Marketo spelling.
    Raises PlanError for a selected attribute that is missing, unsupported, or a non-standard
    account attribute, DirectionError for a direction the field cannot have. Each entity also reads its
    company and owner lookups (`bot.sync.links.plan_lookups`).
    """
    existing = {name.lower(): name for name in existing_marketo_fields}
    taken: set[str] = set()
    display_taken: set[str] = set()
    to_create: dict[str, MarketoField] = {}
    reused: dict[str, None] = {}

    def plan_field(field: MarketoField) -> str:
        if field.name.lower() in existing:
            name = existing[field.name.lower()]
            reused[name] = None
            return name
        to_create.setdefault(field.name, field)
        return field.name

    plans = []
    accounts_planned = bool(selected.get(Entity.account)) and Entity.account in metadata
    for entity in Entity:
        if not selected.get(entity) or entity not in metadata:
            continue  # an empty selection skips the entity (the field picker says so)
        meta = metadata[entity]
        defaults = DEFAULT_MAPPING[entity]
        id_field = entity.marketo_id_field
        if entity in PERSON_ENTITIES:
            id_field = plan_field(_id_field(entity))
            taken.add(plan_field(DELETED_FIELD))  # created now, under approval, for the incremental sync
        elif any(selected.get(e) and e in metadata for e in PERSON_ENTITIES):
            taken.add(plan_field(ACCOUNT_DELETED_FIELD))  # an account delete is shown on its people
        taken.update({id_field, *defaults.values()})
        mappings = []
        chosen_directions, chosen_winners = (directions or {}).get(entity, {}), (winners or {}).get(entity, {})
        for attr in sorted(_resolve(meta, selected[entity]), key=lambda a: a.logical_name):
            kind = marketo_type(attr)
            standard = attr.logical_name in defaults
            if standard:
                name = defaults[attr.logical_name]
            else:
                name = marketo_field_name(entity, attr.logical_name, taken)
                display = _display_name(entity, attr, display_taken)
                display_taken.add(display.lower())
                name = plan_field(MarketoField(
                    name=name, display_name=display, data_type=kind,
                    description=f"from Dynamics {entity.value}.{attr.logical_name}",
                ))
            taken.add(name)
            direction, winner, reason = choose(entity, attr, chosen_directions.get(attr.logical_name),
                                               chosen_winners.get(attr.logical_name))
            mappings.append(FieldMapping(
                source=attr.logical_name, read_name=attr.read_name, attribute_type=attr.attribute_type,
                datetime_behavior=attr.datetime_behavior, marketo_name=name, marketo_type=kind,
                standard=standard, direction=direction, winner=winner, one_way_reason=reason,
            ))
        company_lookup, owner_lookup = plan_lookups(meta, accounts_planned)
        plans.append(EntityPlan(
            entity=entity, mappings=mappings, id_field=id_field,
            filter_attribute=SYNC_FILTER_ATTRIBUTE if detect_sync_filter(meta).applies else None,
            record_count=(counts or {}).get(entity), change_tracking=meta.change_tracking,
            identity_columns=[c for c in identity_columns(meta) if c not in {m.read_name for m in mappings}],
            company_lookup=company_lookup, owner_lookup=owner_lookup,
            primary_contact_lookup=primary_contact_lookup(meta),
        ))
    return FieldPlan(entities=plans, fields_to_create=list(to_create.values()), fields_existing=list(reused))
