"""Acting on a change of a run's status: the connection follows it, the active-run index, the notices."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from rq import Queue

from bot import flow
from bot.models import RunStatus
from bot.notify import Notifier
from bot.store import Store
from bot.sync import webhook_removal
from bot.sync.checkpoint import TERMINAL_RUN, Transition

log = logging.getLogger(__name__)


def settle(store: Store, notifier: Notifier | None, transition: Transition, queue: Queue | None = None) -> None:
    """Act on a change of the run's status: notices, the connection's state, the active-run index and,
    with the queue, the removal of the Dataverse webhook when the connection stops syncing."""
    if not transition.changed:
        return
    run = transition.run
    flow.follow_run(store, run)
    if queue is not None:
        webhook_removal.follow_end(store, queue, run)
    if run.status in TERMINAL_RUN or run.status == RunStatus.paused:
        store.active_runs.remove(run.team_id, run.id)
    if notifier is None:
        return
    if run.status == RunStatus.paused:
        quietly(notifier.paused, run.team_id, run.id)
    elif run.status in TERMINAL_RUN:
        quietly(notifier.completed, run.team_id, run.id)


def quietly(action: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
    """Notices must never break the sync: log and go on."""
    try:
        action(*args, **kwargs)
    except Exception:
        log.exception("sync notice %s failed", getattr(action, "__name__", action))
