"""Which Marketo call writes a batch of an entity: the one choice shared by the initial and incremental syncs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bot.models import Entity, EntityPlan
from bot.sync import opportunities


def batch_writer(marketo: Any, plan: EntityPlan, action: str, source: Any) -> Callable[[list[dict]], list]:
    """Persons by Sync Leads on their Dynamics id, accounts as companies, opportunities with their contact roles
    (read from `source`, Dataverse)."""
    if plan.entity == Entity.opportunity:
        return opportunities.writer(marketo, source, action)
    if plan.entity == Entity.account:
        return lambda records: marketo.sync_companies(records, action=action)
    return lambda records: marketo.sync_leads(records, plan.id_field, action=action)
