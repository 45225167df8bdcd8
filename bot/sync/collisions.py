"""The write-back's rules, as plain functions: which Marketo changes are echoes of our own writes, what
one page of changes amounts to per person and field, and how each is settled against Dynamics.

Echo (reference A5): a change whose `request id` is one of our writes', or whose `modifying user`
is the product's API user, was made by this product (the Dynamics → Marketo sync): it is never
written back. A change Dynamics already holds is not written either (the third rule: the new value
equals what we wrote).

Collision: the same field changed on both sides since the last cycle. The Marketo side is the
activity (`oldValue` → `newValue`); the Dynamics side is the record now. If Dynamics still holds
Marketo's old value, only Marketo changed; if it holds neither the old nor the new value, Dynamics
changed too and the field's winner (`bot.sync.directions.winner`) decides. Because it is decided
from values, not from which cycle ran first, both orders end alike: when the Dynamics → Marketo
cycle already overwrote the Marketo value (it writes whole records, so Marketo then holds the
Dynamics value) and Marketo's value stands, the write-back puts it back on the person too; when
Dynamics wins and Marketo still holds the losing value, it puts the Dynamics value on the person.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from bot.marketo.activities import LeadChange
from bot.models import Side
from bot.sync.reverse import same_value


def is_echo(change: LeadChange, our_request_ids: Collection[str] = ()) -> bool:
    """Made by this product: by the `request id` of one of our writes, else by our API user."""
    request_id = change.request_id
    if request_id is not None and request_id in our_request_ids:
        return True
    return change.by_api_user


@dataclass
class Pending:
    """A person's change of one field over a page: Marketo's value before (when known) and after."""

    old: str | None
    new: str | None
    has_old: bool
    at: datetime
    overwritten: bool = False  # our own write changed the field after it (the other sync ran first)


def collapse(changes: Iterable[LeadChange], our_request_ids: Collection[str] = ()) -> dict[int, dict[str, Pending]]:
    """Person → field → the net change of the page, in activity order. Consecutive changes by people
    merge (first old value, last new value); an echo in between marks the change overwritten, and a
    person's change after an echo starts afresh (it was made seeing our value)."""
    pending: dict[int, dict[str, Pending]] = {}
    for change in changes:
        echo = is_echo(change, our_request_ids)
        fields = pending.setdefault(change.lead_id, {})
        for item in change.fields:
            current = fields.get(item.name)
            if echo:
                if current is not None:
                    current.overwritten = True
                continue
            if current is None or current.overwritten:
                fields[item.name] = Pending(item.old_value, item.new_value, "old_value" in item.model_fields_set,
                                            change.activity_date)
            else:
                current.new, current.at = item.new_value, change.activity_date
    return {lead: fields for lead, fields in pending.items() if fields}


class Outcome(StrEnum):
    same = "same"  # Dynamics already holds Marketo's new value: nothing to write
    apply = "apply"  # only Marketo changed: write its value to Dynamics
    marketo_won = "marketo_won"  # both changed; Marketo's value is written to Dynamics
    dynamics_won = "dynamics_won"  # both changed; Dynamics keeps its value


@dataclass(frozen=True)
class Decision:
    outcome: Outcome
    write_dynamics: bool
    restore_marketo: Any = None  # the value to put back on the Marketo person, when `restore`
    restore: bool = False

    @property
    def collision(self) -> bool:
        return self.outcome in (Outcome.marketo_won, Outcome.dynamics_won)


def decide(new: Any, old: Any, has_old: bool, dynamics: Any, marketo_now: Any, winner: Side,
           dynamics_by_us: bool) -> Decision:
    """Settle one field. Values are Marketo values (`bot.sync.reverse.marketo_value`): `new` / `old` from
    the activity, `dynamics` what the record holds, `marketo_now` what the person holds now.
    `dynamics_by_us`: the record was last modified by the sync user (it holds what we wrote)."""
    if same_value(dynamics, new):
        return Decision(Outcome.same, write_dynamics=False)
    # Marketo holds the Dynamics value instead of its own new one: the other cycle wrote the record
    # over it meanwhile (it sends whole records), so the person gets the new value back.
    overwritten = same_value(marketo_now, dynamics) and not same_value(marketo_now, new)
    only_marketo = same_value(dynamics, old) if has_old else dynamics_by_us
    if only_marketo:
        return Decision(Outcome.apply, write_dynamics=True, restore_marketo=new, restore=overwritten)
    if winner == Side.marketo:
        return Decision(Outcome.marketo_won, write_dynamics=True, restore_marketo=new, restore=overwritten)
    losing_kept = same_value(marketo_now, new)
    return Decision(Outcome.dynamics_won, write_dynamics=False, restore_marketo=dynamics, restore=losing_kept)
