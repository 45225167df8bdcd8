"""Retries of the ongoing sync's error list (`bot.store.sync_errors`), for any table it writes: people,
companies, opportunities (`bot.sync.incremental`) and custom tables (`bot.sync.custom_sync`).

Each cycle first takes up to a limit of the listed failures below `SYNC_RETRY_ATTEMPTS`, the least tried
first, re-reads them from Dynamics by id and writes them again, whether or not they changed there. A record
gone from Dynamics leaves the list as deleted, one no longer to be sent (the sync filter) as excluded, one
written as retried; one failing again counts an attempt.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from bot.store import FailedRecord, Resolution, Store

log = logging.getLogger(__name__)


@dataclass
class Rewrite:
    """What writing the listed records again did."""

    found: list[str]  # the ids still in Dynamics
    sent: list[str]  # of those, the ids sent to Marketo
    failures: list[FailedRecord]  # the ones that failed again (sent or not)


@dataclass
class Retried:
    """What retrying the error list did in one cycle."""

    tried: int = 0
    ok: int = 0
    failures: list[FailedRecord] = field(default_factory=list)
    wrote: bool = False


def retry_listed(store: Store, team_id: str, connection_id: str, key: str, max_attempts: int, limit: int,
                 rewrite: Callable[[list[str]], Rewrite]) -> Retried:
    """Retry up to `limit` listed failures of `key` (an entity or a custom table) through `rewrite`."""
    errors = store.sync_errors
    candidates = errors.retry_candidates(team_id, connection_id, key, max_attempts, limit)
    retried = Retried(tried=len(candidates))
    if not candidates:
        return retried
    ids = [c.id for c in candidates]
    done = rewrite(ids)
    found, failed = set(done.found), {f.id for f in done.failures}
    gone = [i for i in ids if i not in found]
    errors.resolve(team_id, connection_id, key, gone, Resolution.deleted)
    sent = set(done.sent)
    errors.resolve(team_id, connection_id, key, [i for i in done.found if i not in sent and i not in failed],
                   Resolution.excluded)
    retried.ok = errors.resolve(team_id, connection_id, key, [i for i in done.sent if i not in failed],
                                Resolution.retried_ok)
    retried.failures, retried.wrote = done.failures, bool(done.sent)
    errors.book(team_id, connection_id, key, done.failures, time.time())
    if gone or retried.ok or failed:
        log.info("retried %d failed %s records of %s: %d written, %d deleted in Dynamics, %d failed again",
                 len(ids), key, connection_id, retried.ok, len(gone), len(failed))
    return retried
