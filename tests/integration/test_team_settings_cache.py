"""The in-process copy of a workspace's settings behind the role check (`WorkspaceSettings.recent`):
two containers over one real Redis stand for two web processes; a clock is handed in so that
"within TEAM_SETTINGS_CACHE_SECONDS" is tested without waiting."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from bot.config import Settings
from bot.container import Container
from bot.errors import PermissionDenied
from bot.roles import CONNECT, TeamRoles
from bot.store import TeamSettings
from bot.workspace_settings import WorkspaceSettings
from tests.conftest import REDIS_URL

TEAM = "T1"
MAX_AGE = 5.0


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def processes(key_prefix: str, encryption_key: str) -> Iterator[list[Container]]:
    """Two containers, each with its own Redis client, as two web processes have."""
    settings = Settings(ENCRYPTION_KEY=encryption_key, REDIS_KEY_PREFIX=key_prefix, ADMIN_USER_IDS="UOLD",
                        TEAM_SETTINGS_CACHE_SECONDS=MAX_AGE)
    made = [Container(settings, redis.Redis.from_url(REDIS_URL)) for _ in range(2)]
    yield made
    for container in made:
        container.redis.close()


def workspaces(container: Container, clock: Clock) -> WorkspaceSettings:
    return WorkspaceSettings(container.store, container.settings, clock=clock)


def test_a_change_counts_at_once_where_saved_and_within_the_bound_elsewhere(processes: list[Container],
                                                                            clock: Clock) -> None:
    here, there = (workspaces(c, clock) for c in processes)
    roles_here, roles_there = TeamRoles(here), TeamRoles(there)
    assert roles_here.for_team(TEAM).is_admin("UOLD") and roles_there.for_team(TEAM).is_admin("UOLD")

    here.save(TEAM, TeamSettings(admins=["UNEW"], updated_by="UOLD"))
    with pytest.raises(PermissionDenied):
        roles_here.for_team(TEAM).check("UOLD", CONNECT)
    roles_here.for_team(TEAM).check("UNEW", CONNECT)

    clock.now += MAX_AGE - 0.1  # the other process still answers from its copy ...
    assert roles_there.for_team(TEAM).is_admin("UOLD")
    clock.now += 0.2  # ... and reads Redis again once the copy is MAX_AGE old
    assert roles_there.for_team(TEAM).admins == {"UNEW"}
    with pytest.raises(PermissionDenied):
        roles_there.for_team(TEAM).check("UOLD", CONNECT)


def test_a_copy_is_per_team(processes: list[Container], clock: Clock) -> None:
    here, there = (workspaces(c, clock) for c in processes)
    assert there.recent("T2").admins == ["UOLD"]  # T2 copied before T1 existed: never T1's copy
    here.save(TEAM, TeamSettings(admins=["UNEW"], updated_by="UOLD"))
    assert there.recent(TEAM).admins == ["UNEW"] and there.recent("T2").admins == ["UOLD"]


def test_zero_reads_redis_every_time(processes: list[Container], clock: Clock) -> None:
    uncached = processes[1].settings.model_copy(update={"TEAM_SETTINGS_CACHE_SECONDS": 0.0})
    here = workspaces(processes[0], clock)
    there = WorkspaceSettings(processes[1].store, uncached, clock=clock)
    assert there.recent(TEAM).admins == ["UOLD"]
    here.save(TEAM, TeamSettings(admins=["UNEW"], updated_by="UOLD"))
    assert there.recent(TEAM).admins == ["UNEW"]


def test_the_container_s_roles_use_the_setting(processes: list[Container]) -> None:
    """The router's `container.roles` reads through the cache of `container.workspaces`, whose save
    (the App Home's) drops it."""
    first, second = processes
    assert second.roles.for_team(TEAM).is_admin("UOLD")
    first.workspaces.save(TEAM, TeamSettings(admins=["UNEW"], updated_by="UOLD"))
    assert second.roles.for_team(TEAM).is_admin("UOLD")  # within MAX_AGE: its own copy
    second.workspaces.save(TEAM, TeamSettings(admins=["UNEWER"], updated_by="UNEW"))
    assert second.roles.for_team(TEAM).admins == {"UNEWER"}
