"""Every Prometheus metric of the product, defined once, and how each process exposes them.

Counters and histograms are incremented where the event happens (the web front, the Marketo and
Dataverse clients, the sync engine's booking, the sweeper). Figures that live in Redis and are
the same for every process (queue depth, Marketo quota left, lag of the ongoing sync) are read
at scrape time by `SyncGauges`, so they are never stale and never summed across processes.

`serve` with several uvicorn workers runs in prometheus_client's multiprocess mode: the CLI sets
`PROMETHEUS_MULTIPROC_DIR` before the workers start, each worker writes its samples there, and a
scrape of any worker sums them all (`exposition`). Each sync worker serves its own metrics on
`METRICS_PORT` (`serve_worker_metrics`).
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Iterable, Iterator
from typing import Any, Protocol

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
    start_http_server,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

log = logging.getLogger(__name__)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

SLACK_REQUESTS = Counter("slack_requests", "Slack requests received by the web front, by kind and outcome",
                         ["kind", "outcome"])
SLACK_ACK_SECONDS = Histogram("slack_ack_seconds", "Seconds from a Slack request's arrival to its answer",
                              ["kind"], buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0))
WEBHOOKS = Counter("webhooks", "Webhook calls received by the web front, by source (marketo, dynamics) and outcome "
                   "(accepted, coalesced, skipped, rejected, error)", ["source", "outcome"])
SYNC_JOBS_RUNNING = Gauge("sync_jobs_running", "Sync jobs this process is running, by kind", ["kind"],
                          multiprocess_mode="livesum")
SYNC_JOBS_REVIVED = Counter("sync_jobs_revived", "Entity jobs re-enqueued by the sweeper after their worker died")
SYNC_JOBS_HANDED_OVER = Counter("sync_jobs_handed_over",
                                "Entity jobs a stopping worker re-enqueued at a batch boundary")
SYNC_RECORDS = Counter("sync_records", "Records booked by syncs, by entity and outcome (read, written, failed)",
                       ["entity", "outcome"])
MARKETO_CALLS = Counter("marketo_calls", "Marketo REST calls by outcome: ok, a Marketo error code "
                        "(606 rate, 615 concurrency, 607 quota ...), an HTTP status or `connection`", ["outcome"])
DATAVERSE_THROTTLED = Counter("dataverse_throttled", "Dataverse answers 429 (throttled), each waited out")

_CODE = re.compile(r"^[0-9]{3,4}$")


def marketo_outcome(code: str | None) -> str:
    """The `outcome` label for a failed Marketo call: its code when it looks like one (Marketo's
    codes and HTTP statuses, a bounded set), `connection` when Marketo was not reached, else `other`."""
    if code == "connect":
        return "connection"
    return code if code and _CODE.match(code) else "other"


def count_booked(entity: str, read: int, written: int, failed: int) -> None:
    SYNC_RECORDS.labels(entity, "read").inc(read)
    SYNC_RECORDS.labels(entity, "written").inc(written)
    SYNC_RECORDS.labels(entity, "failed").inc(failed)


# -- figures read from Redis at scrape time -------------------------------------------------------------
class QueueDepth(Protocol):
    @property
    def count(self) -> int: ...


class QuotaUsage(Protocol):
    def calls_today(self) -> int: ...


class CycleTimes(Protocol):
    def last_cycles(self) -> dict[str, float]: ...


class SyncGauges(Collector):
    """Queue depth, Marketo quota left and the lag of the ongoing (incremental) sync, read from Redis
    when scraped. A figure Redis cannot give right now is left out of that scrape, never made up."""

    def __init__(self, queue: QueueDepth, limiter: QuotaUsage, daily_quota: int, cycles: CycleTimes,
                 clock: Any = time.time) -> None:
        self.queue = queue
        self.limiter = limiter
        self.daily_quota = daily_quota
        self.cycles = cycles
        self.clock = clock

    def describe(self) -> Iterable[Any]:
        return []  # names are not reserved: the figures come from Redis, once per registry

    def collect(self) -> Iterator[GaugeMetricFamily]:
        yield from self._one("sync_queue_depth", "Sync jobs waiting in the queue", lambda: self.queue.count)
        yield from self._one("marketo_quota_left", "Marketo calls left in today's quota (all processes)",
                             lambda: max(0, self.daily_quota - self.limiter.calls_today()))
        try:
            last = self.cycles.last_cycles()
        except Exception as exc:  # noqa: BLE001 - a scrape never fails for a Redis blip
            log.warning("metrics: could not read sync lag (%s)", type(exc).__name__)
            return
        family = GaugeMetricFamily("sync_lag_seconds", "Seconds since the newest successful incremental "
                                   "cycle of an entity (the oldest across connections)", labels=["entity"])
        now = self.clock()
        for entity, at in sorted(last.items()):
            family.add_metric([entity], max(0.0, now - at))
        yield family

    @staticmethod
    def _one(name: str, documentation: str, read: Any) -> Iterator[GaugeMetricFamily]:
        try:
            value = read()
        except Exception as exc:  # noqa: BLE001 - a scrape never fails for a Redis blip
            log.warning("metrics: could not read %s (%s)", name, type(exc).__name__)
            return
        yield GaugeMetricFamily(name, documentation, value=value)


# -- exposition -----------------------------------------------------------------------------------------
def multiprocess_dir() -> str | None:
    return os.environ.get(MULTIPROC_ENV) or None


def exposition(gauges: Collector) -> tuple[bytes, str]:
    """The text a scrape of this process returns, and its content type: this process's metrics (in
    multiprocess mode, every web worker's, summed) and the Redis figures."""
    registry = CollectorRegistry()
    if multiprocess_dir():
        multiprocess.MultiProcessCollector(registry)
    else:
        registry.register(_Default())
    registry.register(gauges)
    return generate_latest(registry), CONTENT_TYPE_LATEST


class _Default(Collector):
    """The process's own registry, inside a per-scrape one."""

    def describe(self) -> Iterable[Any]:
        return []

    def collect(self) -> Iterable[Any]:
        return REGISTRY.collect()


def serve_worker_metrics(port: int, gauges: Collector, host: str = "0.0.0.0") -> Any:  # nosec B104
    """Serve this worker's metrics on `port` (every interface: Prometheus scrapes from outside the
    container); returns the server, to `shutdown()`. The registry is built per process, not shared."""
    registry = CollectorRegistry()
    registry.register(_Default())
    registry.register(gauges)
    server, _thread = start_http_server(port, addr=host, registry=registry)
    return server
