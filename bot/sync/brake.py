"""The mass-change brake of the incremental cycles.

A cycle that would mark as deleted, or overwrite, more records of an entity than the limit writes
none of them: its delta link stays where it was (nothing is lost), the entity is held
(`MassChangeHold`), and a team lead is asked to approve or discard. An overwrite is an update that
changes at least one value of a person Marketo already holds (found by reading the persons back), among
the fields the sync sends (`sent`: a person linked to its company is sent without the company's fields);
companies cannot be read back, so every changed account counts. While held, the entity's cycles
do not run. After a decision the next cycle applies it once: approved, it writes everything;
discarded, it skips the deletes and overwrites (each listed in the errors as discarded by the lead)
and writes the rest, then stores the new delta link and clears the hold.

The screen reads no more than it must: while a cycle's changes stay under the limit they are only
buffered (at most the limit of each kind), and persons are read back only once the changed records
outnumber the limit. Pages before the one that crossed the limit may already have been written;
they are written again, unchanged, by the cycle after the decision.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field

from slack_sdk.errors import SlackApiError

from bot import audit
from bot.config import Settings
from bot.models import BrakeStatus, Connection, EntityPlan, HeldChange, MassChangeHold
from bot.notify import Notifier
from bot.store import Store
from bot.sync.engine import same_value
from bot.sync.ledger import LedgerEntry
from bot.sync.mapping import PERSON_ENTITIES
from bot.views.brake import brake_request_message
from bot.views.kit import mention

log = logging.getLogger(__name__)

DEFAULT_LIMIT = 1000
DEFAULT_SHARE = 0.10
EXAMPLES = 5
DISCARDED_CODE = "discarded"

Lookup = Callable[[list[str], list[str]], list[dict]]
Sent = Callable[[list[dict]], list[dict]]  # records → each as the sync sends it to Marketo
Key = tuple[str, str | None]


def limit_for(setting: int | None, entity_count: int | None) -> int:
    """`MASS_CHANGE_LIMIT` when set; otherwise max(1000, 10% of the entity's records)."""
    if setting is not None:
        return setting
    return max(DEFAULT_LIMIT, math.ceil(DEFAULT_SHARE * (entity_count or 0)))


def entity_count(store: Store, connection: Connection, plan: EntityPlan) -> int | None:
    """The entity's record count: the plan's, else the estimate of the connection's last run."""
    if plan.record_count:
        return plan.record_count
    run = store.get_run(connection.team_id, connection.run_id) if connection.run_id else None
    progress = next((p for p in run.entities if p.entity == plan.entity), None) if run else None
    return progress.estimated if progress else None


@dataclass
class Ready:
    """What a screened page lets the cycle write now, and what a discard decision dropped."""

    records: list[dict] = field(default_factory=list)
    keys: list[Key] = field(default_factory=list)
    deleted_ids: list[str] = field(default_factory=list)
    discarded: list[LedgerEntry] = field(default_factory=list)

    def extend(self, other: Ready) -> None:
        self.records += other.records
        self.keys += other.keys
        self.deleted_ids += other.deleted_ids
        self.discarded += other.discarded


class Screen:
    """Sorts one cycle's changes, page by page, into what may be written now and what the brake holds."""

    def __init__(self, plan: EntityPlan, limit: int, lookup: Lookup | None,
                 decision: MassChangeHold | None = None, decided_ids: frozenset[str] = frozenset(),
                 sent: Sent = lambda records: records) -> None:
        """`decision`, a decided hold, and `decided_ids`, the records it held: they pass the brake,
        written (approved) or dropped into the errors (discarded); every other change is screened."""
        self.plan = plan
        self.limit = limit
        self.lookup = lookup
        self.sent = sent
        self.decision = decision
        self.decided_ids = decided_ids if decision is not None else frozenset()
        self.deletes = 0
        self.overwrites = 0
        self.examples: list[HeldChange] = []
        self.held_ids: list[str] = []  # every delete and overwrite counted, once tripped
        self.tripped = False
        self._changed = 0  # upserted records seen so far
        self._compared = False  # persons are read back from now on
        self._held = Ready()  # deletes and overwrites waiting for the end of the cycle

    @property
    def persons(self) -> bool:
        return self.plan.entity in PERSON_ENTITIES

    def admit(self, records: list[dict], keys: list[Key], deleted_ids: list[str]) -> Ready:
        """One page's changes in; what may be written at once out."""
        ready = Ready()
        if not self.persons:  # an account delete deletes nothing in Marketo: it flags its people (`bot.sync.people`)
            ready.deleted_ids, deleted_ids = deleted_ids, []
        if self.decision is not None and self.decided_ids:
            records, keys, deleted_ids = self._decided(self.decision, records, keys, deleted_ids, ready)
        self.deletes += len(deleted_ids)
        self._changed += len(records)
        if self.tripped:
            self._count(records, keys, deleted_ids)
            return ready
        self._held.deleted_ids += deleted_ids
        if self._compared:
            ready.extend(self._split(records, keys))
        else:
            self._held.records += records
            self._held.keys += keys
            if self._changed > self.limit:
                self._compared = True
                buffered, self._held = self._held, Ready(deleted_ids=self._held.deleted_ids)
                ready.extend(self._split(buffered.records, buffered.keys))
        if self.deletes > self.limit or self.overwrites > self.limit:
            self._trip()
        return ready

    def finish(self) -> Ready:
        """What is left to write once every page was screened (nothing when the brake tripped)."""
        if self.tripped:
            return Ready()
        held, self._held = self._held, Ready()
        return held

    # -- internals ------------------------------------------------------------------------------------
    def _decided(self, decision: MassChangeHold, records: list[dict], keys: list[Key], deleted_ids: list[str],
                 ready: Ready) -> tuple[list[dict], list[Key], list[str]]:
        """Apply the decision to the records it held (into `ready`); returns the others."""
        approved = decision.status == BrakeStatus.approved
        why = f"Mass change discarded by {mention(decision.decided_by or 'a team lead')}"
        entity = self.plan.entity.value
        rest: tuple[list[dict], list[Key], list[str]] = ([], [], [])
        for record, key in zip(records, keys, strict=True):
            if key[0] not in self.decided_ids:
                rest[0].append(record)
                rest[1].append(key)
            elif approved:
                ready.records.append(record)
                ready.keys.append(key)
            else:
                ready.discarded.append(LedgerEntry(entity=entity, id=key[0], email=key[1], code=DISCARDED_CODE,
                                                   message=f"{why}: update not written"))
        for record_id in deleted_ids:
            if record_id not in self.decided_ids:
                rest[2].append(record_id)
            elif approved:
                ready.deleted_ids.append(record_id)
            else:
                ready.discarded.append(LedgerEntry(entity=entity, id=record_id, code=DISCARDED_CODE,
                                                   message=f"{why}: not marked deleted"))
        return rest

    def _split(self, records: list[dict], keys: list[Key]) -> Ready:
        """Creates and unchanged persons are ready; overwrites are counted and held."""
        ready = Ready()
        for record, key, changed in self._compare(records, keys):
            if changed is None:
                ready.records.append(record)
                ready.keys.append(key)
                continue
            self._overwrite(key, changed)
            self._held.records.append(record)
            self._held.keys.append(key)
        return ready

    def _count(self, records: list[dict], keys: list[Key], deleted_ids: list[str]) -> None:
        """After the trip: count (and keep examples), write nothing."""
        for _, key, changed in self._compare(records, keys):
            if changed is not None:
                self._overwrite(key, changed)
        self._delete(deleted_ids)

    def _overwrite(self, key: Key, changed: list[str]) -> None:
        self.overwrites += 1
        self.held_ids.append(key[0])
        self._example(HeldChange(id=key[0], email=key[1], fields=changed))

    def _delete(self, deleted_ids: list[str]) -> None:
        self.held_ids += deleted_ids
        for record_id in deleted_ids[:EXAMPLES]:
            self._example(HeldChange(id=record_id, deleted=True))

    def _trip(self) -> None:
        self.tripped = True
        self._delete(self._held.deleted_ids)
        self._held = Ready()

    def _compare(self, records: list[dict], keys: list[Key]) -> list[tuple[dict, Key, list[str] | None]]:
        """Each record with the fields it would change in Marketo, None for a create or no change."""
        if not records:
            return []
        sent = self.sent(records)
        if self.lookup is None:
            return [(record, key, sorted(person)) for record, person, key in zip(records, sent, keys, strict=True)]
        id_field = self.plan.id_field
        names = sorted({name for person in sent for name in person})
        rows = {str(row.get(id_field)): row for row in self.lookup([key[0] for key in keys], names)}
        compared: list[tuple[dict, Key, list[str] | None]] = []
        for record, person, key in zip(records, sent, keys, strict=True):
            row = rows.get(key[0])
            changed = sorted(n for n, v in person.items() if row is not None and not same_value(row.get(n), v))
            compared.append((record, key, changed or None))
        return compared

    def held_examples(self) -> list[HeldChange]:
        """The examples, deleted persons with the email Marketo holds for them."""
        deleted = [change.id for change in self.examples if change.deleted]
        if not deleted or self.lookup is None or not self.persons:
            return self.examples
        id_field = self.plan.id_field
        emails = {str(row.get(id_field)): row.get("email") for row in self.lookup(deleted, [id_field, "email"])}
        return [change.model_copy(update={"email": emails.get(change.id)}) if change.deleted else change
                for change in self.examples]

    def _example(self, change: HeldChange) -> None:
        if len(self.examples) < EXAMPLES:
            self.examples.append(change)


def hold(store: Store, notifier: Notifier | None, settings: Settings, connection: Connection, plan: EntityPlan,
         screen: Screen) -> MassChangeHold:
    """Record the held cycle and ask the team leads (the approvals channel, else each lead's DMs)."""
    held = MassChangeHold(team_id=connection.team_id, connection_id=connection.id, entity=plan.entity,
                          limit=screen.limit, deletes=screen.deletes, overwrites=screen.overwrites,
                          examples=screen.held_examples())
    store.holds.put(held, screen.held_ids)
    audit.AuditLog(store).record(connection.team_id, audit.SYSTEM, audit.MASS_CHANGE_HELD, connection.id,
                                 f"{plan.entity.value}: {held.deletes} deletes, {held.overwrites} overwrites "
                                 f"(limit {held.limit}); nothing written")
    if notifier is None:
        return held
    message = brake_request_message(held)
    workspace = notifier.workspaces.get(connection.team_id)
    targets = [workspace.approval_channel] if workspace.approval_channel else sorted(workspace.leads)
    slack = notifier.clients.for_team(connection.team_id)
    posted: list[tuple[str, str]] = []
    for target in targets:
        try:
            response = slack.chat_postMessage(channel=target, **message.to_dict())
            posted.append((response["channel"], response["ts"]))
        except SlackApiError as exc:
            log.warning("could not post the mass-change request to %s: %s", target, exc.response.get("error"))

    def remember(current: MassChangeHold) -> MassChangeHold | None:
        return current.model_copy(update={"messages": posted}) if current.status == BrakeStatus.held else None

    stored, _ = store.holds.update(held.team_id, held.connection_id, held.entity.value, remember)
    return stored or held
