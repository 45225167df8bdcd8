"""Everything a web or socket process holds: settings, clients, and the domain services."""

from __future__ import annotations

import functools

from bot.approval_effects import ApprovalEffects
from bot.approvals import ApprovalService
from bot.audit import AuditLog
from bot.background import Background
from bot.config import Settings
from bot.dynamics.metadata import MetadataCache
from bot.notify import Notifier
from bot.roles import Roles
from bot.services import Services


class Runtime:
    def __init__(self, services: Services) -> None:
        self.services = services
        self.settings: Settings = services.settings
        self.store = services.store
        self.background = Background()

    @functools.cached_property
    def roles(self) -> Roles:
        return Roles.from_settings(self.settings)

    @functools.cached_property
    def audit(self) -> AuditLog:
        return AuditLog(self.store)

    @functools.cached_property
    def notifier(self) -> Notifier:
        return self.services.notifier()

    @functools.cached_property
    def metadata(self) -> MetadataCache:
        return MetadataCache(self.store)

    @functools.cached_property
    def approvals(self) -> ApprovalService:
        return ApprovalService(
            self.store,
            required=self.settings.APPROVALS_REQUIRED,
            ttl_hours=self.settings.APPROVAL_TTL_HOURS,
            roles=self.roles,
            effects=ApprovalEffects(self),
        )
