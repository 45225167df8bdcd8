"""The RQ job functions (ids only) and the worker's `SyncServices` they run with.

Jobs are enqueued by dotted name (`bot.sync.entry.sync_entity_job`), so nothing that starts a sync
imports this module. The worker process installs its services once at start-up (`run_worker`);
a job that runs in a process that installed none fails loudly instead of building clients from
the environment.
"""

from __future__ import annotations

from rq import get_current_job

from bot import metrics
from bot.logging_setup import sync_context
from bot.models import Entity
from bot.sync.custom_sync import run_custom_objects
from bot.sync.entity_job import run_entity
from bot.sync.incremental import run_incremental
from bot.sync.ports import SyncServices
from bot.sync.write_back import run_write_back

_installed: SyncServices | None = None


class NoSyncServices(RuntimeError):
    """A sync job ran in a process whose worker did not install its services."""


def install(services: SyncServices | None) -> None:
    """Set what this process's jobs run with (the worker, once at start-up; tests, around a test)."""
    global _installed
    _installed = services


def installed() -> SyncServices:
    if _installed is None:
        raise NoSyncServices("sync jobs run only in a worker started by run_worker, which installs their services")
    return _installed


def sync_entity_job(team_id: str, run_id: str, entity: str) -> str:
    job = get_current_job()
    with sync_context(team_id=team_id, run_id=run_id, entity=entity), \
            metrics.SYNC_JOBS_RUNNING.labels("initial").track_inprogress():
        return run_entity(installed(), team_id, run_id, Entity(entity), job_id=job.id if job else None)


def incremental_entity_job(team_id: str, connection_id: str, entity: str) -> str:
    with sync_context(team_id=team_id, connection_id=connection_id, entity=entity), \
            metrics.SYNC_JOBS_RUNNING.labels("incremental").track_inprogress():
        return run_incremental(installed(), team_id, connection_id, Entity(entity))


def write_back_job(team_id: str, connection_id: str) -> str:
    with sync_context(team_id=team_id, connection_id=connection_id, entity="write-back"), \
            metrics.SYNC_JOBS_RUNNING.labels("write_back").track_inprogress():
        return run_write_back(installed(), team_id, connection_id)


def custom_objects_job(team_id: str, connection_id: str) -> str:
    with sync_context(team_id=team_id, connection_id=connection_id, entity="custom-objects"), \
            metrics.SYNC_JOBS_RUNNING.labels("custom_objects").track_inprogress():
        return run_custom_objects(installed(), team_id, connection_id)
