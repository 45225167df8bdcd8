"""One Marketo person per human: the rules, as plain functions (the side effects are in `bot.sync.people`).

Marketo's own Dynamics sync keeps a lead and the contact it was qualified into as one Marketo person, and
follows merges made in Dynamics (reference sync-more §D6, §G). Here:

- A contact whose `originatingleadid` points to a lead is that lead's person: it is written to the person
  holding the lead's `dynamicsLeadId` (which then also holds `dynamicsContactId`). Where the lead's person and
  the contact's person already both exist, the lead's is merged into the contact's (`resolve_qualified`).
- A lead or contact merged away in Dynamics (`merged`, `masterid`; change tracking shows it as an update) is
  not written: its person is merged into the master's, or becomes the master's when it has none yet
  (`resolve_merged`).
- An account delete cannot be shown on the Marketo company (its fields cannot be created through the API),
  so the people who worked there get `dynamicsAccountDeleted` = true.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from bot.models import Entity, EntityMetadata, MarketoField

MERGED = "merged"
MASTER = "_masterid_value"
ORIGINATING_LEAD = "_originatingleadid_value"
PARENT_ACCOUNT: dict[Entity, str] = {Entity.contact: "_parentcustomerid_value", Entity.lead: "_parentaccountid_value"}
# The columns read for identity, by logical name; only those the org has are read (`identity_columns`).
_COLUMNS: dict[Entity, tuple[str, ...]] = {
    Entity.lead: ("merged", "masterid", "parentaccountid"),
    Entity.contact: ("merged", "masterid", "originatingleadid", "parentcustomerid"),
}

ACCOUNT_DELETED_FIELD = MarketoField(
    name="dynamicsAccountDeleted", display_name="Dynamics Account Deleted", data_type="boolean",
    description="true when the account this person worked for was deleted in Dynamics",
)


def identity_columns(metadata: EntityMetadata) -> list[str]:
    """The read names of the identity columns this org's table has (an org without Sales has no
    `originatingleadid`, and `$select` of a missing column fails the whole read)."""
    return [attr.read_name for name in _COLUMNS.get(metadata.entity, ())
            if (attr := metadata.attribute(name)) is not None]


def merged_into(record: dict) -> str | None:
    """The master's id when the record was merged away in Dynamics, else None."""
    master = record.get(MASTER)
    return str(master).lower() if record.get(MERGED) is True and master else None


@dataclass
class Identities:
    """What the records of one batch say about who they are, noted while they are prepared."""

    qualified_from: dict[str, str] = field(default_factory=dict)  # contact id → the lead it was qualified from
    merged_into: dict[str, str] = field(default_factory=dict)  # merged-away id → the master's id
    account_of: dict[str, str] = field(default_factory=dict)  # record id → its parent account's id

    def note(self, entity: Entity, record_id: str, record: dict) -> None:
        lead = record.get(ORIGINATING_LEAD) if entity == Entity.contact else None
        if lead:
            self.qualified_from[record_id] = str(lead).lower()
        account = record.get(PARENT_ACCOUNT.get(entity, ""))
        if account:
            self.account_of[record_id] = str(account).lower()


@dataclass(frozen=True)
class Person:
    """A Marketo person as read back: its id and the Dynamics ids it holds."""

    id: int
    lead_id: str | None = None
    contact_id: str | None = None

    def holds(self, entity: Entity, record_id: str) -> bool:
        held = self.lead_id if entity == Entity.lead else self.contact_id
        return bool(held) and str(held).lower() == record_id.lower()


@dataclass(frozen=True)
class Resolution:
    """What to do in Marketo before a record is written: merge `losers` into `winner`; with `rekey`, the
    winner lacks the record's Dynamics id and gets it first (so the write that follows finds it)."""

    winner: int | None = None
    losers: tuple[int, ...] = ()
    rekey: bool = False


def resolve_qualified(contact_id: str, lead_id: str, persons: list[Person]) -> Resolution:
    """The contact's person wins (Dynamics wins for contacts); the lead's person is merged into it, or, when the
    contact has none yet, takes the contact's id. A lead person holding another contact is not this human's."""
    mine = sorted(p.id for p in persons if p.holds(Entity.contact, contact_id))
    leads = sorted(p.id for p in persons if p.holds(Entity.lead, lead_id) and p.id not in mine
                   and (not p.contact_id or p.holds(Entity.contact, contact_id)))
    if not mine and not leads:
        return Resolution()
    winner = (mine or leads)[0]
    return Resolution(winner, tuple(i for i in mine + leads if i != winner), rekey=not mine)


def resolve_merged(entity: Entity, loser_id: str, master_id: str, persons: list[Person]) -> Resolution:
    """The master's person wins and takes the merged-away record's persons; without one, the loser's person
    becomes the master's (`rekey`), so the master's next write updates it instead of creating another."""
    losers = sorted(p.id for p in persons if p.holds(entity, loser_id))
    masters = sorted(p.id for p in persons if p.holds(entity, master_id) and p.id not in losers)
    if not losers:
        return Resolution()
    if masters:
        return Resolution(masters[0], tuple(losers))
    return Resolution(losers[0], tuple(losers[1:]), rekey=True)


def person_key(entity: Entity, record_id: str) -> str:
    return f"{entity.value}:{record_id}"


def split_person_key(key: str) -> tuple[Entity, str]:
    entity, _, record_id = key.partition(":")
    return Entity(entity), record_id
