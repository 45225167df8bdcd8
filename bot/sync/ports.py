"""What sync jobs use from their process: one small typed bundle, taken from the process's `Container`.

Sync code depends on this and not on the container, so the container (which also builds the
approval effects that start syncs) and the sync modules never import each other.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rq import Queue

from bot.config import Settings
from bot.notify import Notifier
from bot.store import Store


@dataclass(frozen=True)
class SyncServices:
    settings: Settings
    store: Store
    queue: Queue
    dataverse: Callable[[str, str], Any]  # (team_id, connection_id) -> a signed-in DataverseClient
    marketo: Callable[[], Any]  # -> the process's MarketoClient (limiter shared through Redis)
    notifier: Notifier | None = None
