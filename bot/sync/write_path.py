"""Which way an entity's initial load goes to Marketo, and about how many API calls it costs: plain rules,
shared by the plan shown before approval and the sync job that follows it."""

from __future__ import annotations

import math
from typing import NamedTuple

from bot.models import Entity

PERSONS = frozenset({Entity.lead, Entity.contact})
# Marketo refuses an import file of 10 MB or more; read strictly (10,000,000 bytes, not 10 MiB), less a margin.
MAX_PART_BYTES = 9_990_000
REST_RECORDS_PER_CALL = 300
CALLS_PER_PART = 3  # the upload, and a status poll or two (failures and warnings files only when there are any)
ROW_BYTES = 40  # a CSV row's Dynamics id and separators...
CELL_BYTES = 16  # ...plus this per mapped field: a rough size, for the plan's estimate only


class WritePath(NamedTuple):
    bulk: bool
    calls: int  # about how many Marketo API calls the load takes


def takes_bulk(entity: Entity, records: int, minimum: int) -> bool:
    """Whether an initial load of `records` goes through Bulk Import (`minimum`: BULK_IMPORT_MIN_RECORDS;
    0 always, -1 never). Companies have no bulk import."""
    return entity in PERSONS and minimum >= 0 and (minimum == 0 or records > minimum)


def write_path(entity: Entity, records: int, fields: int, minimum: int) -> WritePath:
    if takes_bulk(entity, records, minimum):
        parts = math.ceil(records * (ROW_BYTES + CELL_BYTES * fields) / MAX_PART_BYTES)
        return WritePath(True, max(1, parts) * CALLS_PER_PART)
    return WritePath(False, math.ceil(records / REST_RECORDS_PER_CALL))


def path_text(entity: Entity, records: int, fields: int, minimum: int) -> str:
    """`Bulk Import: 1,200,000 records > 20,000; about 45 API calls` or `REST: about 4,000 API calls`."""
    path = write_path(entity, records, fields, minimum)
    if path.bulk:
        why = "always (BULK_IMPORT_MIN_RECORDS is 0)" if minimum == 0 else f"{records:,} records > {minimum:,}"
        return f"Bulk Import: {why}; about {path.calls:,} API calls"
    return f"REST: about {path.calls:,} API calls"
