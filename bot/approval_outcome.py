"""What an approval click came to: the outcome of a decision and the approval it left behind."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from bot.models import Approval, EffectsState


class Outcome(StrEnum):
    pending = "pending"  # nothing changed; still waiting (expiry sweep of a request not yet due)
    recorded = "recorded"  # a vote counted; more approvals needed
    approved = "approved"  # this call completed the approval (or re-ran failed effects)
    rejected = "rejected"
    cancelled = "cancelled"
    already_decided = "already_decided"
    expired = "expired"
    not_found = "not_found"
    self_approval = "self_approval"  # the requester tried to decide on their own request
    not_lead = "not_lead"
    duplicate_vote = "duplicate_vote"


@dataclass(frozen=True)
class Decision:
    outcome: Outcome
    approval: Approval | None
    message: str  # plain language for the person who clicked

    @property
    def effects_failed(self) -> bool:
        return self.approval is not None and self.approval.effects_state == EffectsState.failed
