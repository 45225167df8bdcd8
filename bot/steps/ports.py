"""What steps are given instead of the whole runtime: factories of signed-in clients."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from bot.dynamics.client import DataverseClient
from bot.marketo.client import MarketoClient
from bot.models import Approval

DataverseFactory = Callable[[str, str], DataverseClient]
"""(team id, connection id) -> a Dataverse client signed in with that connection's saved credentials."""

MarketoFactory = Callable[[], MarketoClient]


class ApprovalMessages(Protocol):
    """Keeps every posted copy of an approval request in step with its record."""

    def update_messages(self, approval: Approval) -> None: ...
