"""`python -m bot.worker` / `connect-dynamics worker`: an RQ worker for sync jobs, plus maintenance.

The worker is RQ's `SimpleWorker` (the job runs in the worker process, no fork per job): a sync
job is one long job with its own threads, and the maintenance thread below (the sweeper that
revives jobs of dead workers, and the incremental-sync scheduler) must not be forked mid-call.
Run as many workers as you like, on as many machines; they share everything through Redis.

Each worker serves its Prometheus metrics on `METRICS_PORT` (`bot.metrics`). SIGTERM is safe at any
time: a worker running a sync job stops it at the next batch boundary and hands the entity over to
another worker (`bot.sync.entity_job`), then exits (RQ's warm shutdown); a second SIGTERM stops at once.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from bot import alerts, logging_setup, metrics, shutdown
from bot.approvals import ApprovalService
from bot.config import WORKER_REQUIRED, Settings
from bot.container import Container
from bot.store import RedisError, jobs
from bot.sync import entry, incremental
from bot.sync.ports import SyncServices
from bot.sync.sweeper import sweep

log = logging.getLogger(__name__)


HEARTBEAT_TICKS = 3
"""The heartbeat outlives this many maintenance rounds: one slow round does not fail the probe."""


def tick_seconds(settings: Settings) -> float:
    """How often the maintenance thread runs: every `SYNC_SWEEP_SECONDS`, or more often when the cycles
    are due more often (`INCREMENTAL_SYNC_MINUTES` may be a fraction: 0.1 is every 6 seconds)."""
    return min(settings.SYNC_SWEEP_SECONDS, settings.INCREMENTAL_SYNC_MINUTES * 60)


class Maintenance(threading.Thread):
    """Every `tick_seconds`: say this worker is alive (`connect-dynamics probe worker` reads it);
    revive sync jobs whose worker died; enqueue due incremental syncs and alert when their cycles are
    overdue; expire approval requests past their TTL even when nobody clicks (messages updated,
    requester told)."""

    def __init__(self, services: SyncServices, approvals: ApprovalService | None = None) -> None:
        super().__init__(daemon=True, name="sync-maintenance")
        self.services = services
        self.approvals = approvals
        self.stopped = threading.Event()

    def run(self) -> None:
        interval = tick_seconds(self.services.settings)
        while not self.stopped.wait(interval):
            self.tick()

    def tick(self) -> None:
        services = self.services
        try:
            services.store.health.beat(services.settings.WORKER_NAME,
                                       HEARTBEAT_TICKS * services.settings.SYNC_SWEEP_SECONDS)
        except Exception:
            log.exception("heartbeat failed; trying again next round")
        try:
            sweep(services.store, services.queue, lease_seconds=services.settings.SYNC_LEASE_SECONDS,
                  notifier=services.notifier)
            incremental.schedule_due(services.store, services.queue, services.settings)
            alerts.check_overdue(services.store, services.notifier, services.settings.INCREMENTAL_SYNC_MINUTES)
        except Exception:
            log.exception("sync maintenance failed; trying again next round")
        try:
            self.expire_approvals()
        except Exception:
            log.exception("approval expiry sweep failed; trying again next round")

    def expire_approvals(self) -> None:
        if self.approvals is None:
            return
        for team_id in self.services.store.teams_with_pending_approvals():
            self.approvals.expire_due(team_id)


def run_worker(container: Container, *, burst: bool = False) -> bool:
    """Work the sync queue until stopped (or, with `burst`, until it is empty). The container's sync
    services are installed for this process's jobs before the first job runs."""
    container.settings.require(WORKER_REQUIRED)
    entry.install(container.sync)
    metrics_server = serve_metrics(container)
    maintenance = Maintenance(container.sync, container.approvals)
    maintenance.tick()
    maintenance.start()
    worker = jobs.worker([container.queue], container.redis, on_warm_shutdown=shutdown.request)
    try:
        return worker.work(burst=burst, logging_level="INFO")
    finally:
        maintenance.stopped.set()
        maintenance.join(timeout=container.settings.SYNC_SWEEP_SECONDS)
        try:
            container.store.health.stop(container.settings.WORKER_NAME)
        except RedisError:
            log.warning("could not remove this worker's heartbeat; it expires by itself")
        if metrics_server is not None:
            metrics_server.shutdown()


def serve_metrics(container: Container) -> Any:
    """This worker's metrics on `METRICS_PORT` (0: none). A port already taken (several workers on
    one host with the same settings) costs this worker its metrics, not its work."""
    settings = container.settings
    if not settings.METRICS_PORT:
        return None
    gauges = metrics.SyncGauges(container.queue, container.marketo_limiter(), settings.MARKETO_DAILY_QUOTA,
                                container.store.incremental)
    try:
        return metrics.serve_worker_metrics(settings.METRICS_PORT, gauges)
    except OSError as exc:
        log.error("metrics: cannot listen on METRICS_PORT %s (%s); this worker serves no metrics",
                  settings.METRICS_PORT, exc.strerror or exc)
        return None


def main() -> None:
    settings = Settings()
    logging_setup.configure(settings.LOG_FORMAT)
    run_worker(Container(settings))


if __name__ == "__main__":
    main()
