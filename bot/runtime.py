"""Everything a web or socket process holds: settings, clients, and the domain services."""

from __future__ import annotations

import functools

from bot.background import Background
from bot.config import Settings
from bot.services import Services


class Runtime:
    def __init__(self, services: Services) -> None:
        self.services = services
        self.settings: Settings = services.settings
        self.store = services.store
        self.background = Background()

    @functools.cached_property
    def roles(self):  # noqa: ANN201
        from bot.roles import Roles

        return Roles.from_settings(self.settings)

    @functools.cached_property
    def audit(self):  # noqa: ANN201
        from bot.audit import AuditLog

        return AuditLog(self.store)

    @functools.cached_property
    def notifier(self):  # noqa: ANN201
        return self.services.notifier()

    @functools.cached_property
    def metadata(self):  # noqa: ANN201
        from bot.dynamics.metadata import MetadataCache

        return MetadataCache(self.store)

    @functools.cached_property
    def approvals(self):  # noqa: ANN201
        from bot.approval_effects import ApprovalEffects
        from bot.approvals import ApprovalService

        return ApprovalService(
            self.store,
            required=self.settings.APPROVALS_REQUIRED,
            ttl_hours=self.settings.APPROVAL_TTL_HOURS,
            roles=self.roles,
            effects=ApprovalEffects(self),
        )
