"""Runs, jobs, pause/resume, cancel and the sweeper, on real Redis and a real (in-process) RQ worker."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import redis
from rq import Queue, SimpleWorker
from rq.job import Job, JobStatus

from bot.config import Settings
from bot.marketo.errors import DailyQuotaExceeded
from bot.models import Connection, Entity, FieldPlan, FlowState, RunStatus
from bot.store import Lease, Store
from bot.sync import entity_job, entry, runs
from bot.sync.checkpoint import EntityState, RunState
from bot.sync.ports import SyncServices
from bot.sync.settle import settle
from bot.sync.sweeper import sweep
from tests.unit.test_sync_engine import FakeDataverse, FakeMarketo, expected_kept, lead_plan, make_records


class RecordingNotifier:
    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []
        self.lock = threading.Lock()

    def _record(self, kind: str, run_id: str) -> None:
        with self.lock:
            self.events.append((kind, run_id))

    def progress(self, team_id: str, run_id: str, *, force: bool = False) -> bool:
        self._record("progress", run_id)
        return True

    def paused(self, team_id: str, run_id: str) -> None:
        self._record("paused", run_id)

    def completed(self, team_id: str, run_id: str) -> None:
        self._record("completed", run_id)

    def count(self, kind: str) -> int:
        return sum(1 for k, _ in self.events if k == kind)


@pytest.fixture
def queue(redis_client: redis.Redis, key_prefix: str) -> Iterator[Queue]:
    q = Queue(f"{key_prefix}-sync", connection=redis_client)
    yield q
    for job_id in q.get_job_ids():
        Job.fetch(job_id, connection=redis_client).delete()
    q.delete(delete_jobs=True)


class World:
    """A connection with a lead + contact plan, fakes for both services, and the sync services the jobs run with."""

    def __init__(self, store: Store, queue: Queue, leads: int = 3000, contacts: int = 700) -> None:
        self.store, self.queue = store, queue
        self.sources = {"lead": FakeDataverse(make_records(leads, Entity.lead), page_size=100),
                        "contact": FakeDataverse(make_records(contacts, Entity.contact), page_size=100)}
        self.marketo = FakeMarketo()
        self.notifier = RecordingNotifier()
        self.connection = Connection(team_id="T1", requester="U1", state=FlowState.approved,
                                     plan=FieldPlan(entities=[lead_plan(Entity.lead), lead_plan(Entity.contact)]))
        store.save_connection(self.connection)
        settings = Settings(SYNC_LEASE_SECONDS=1, MARKETO_MAX_CONCURRENCY=3, PROGRESS_UPDATE_SECONDS=0)
        self.services = SyncServices(settings=settings, store=store, queue=queue,
                                     dataverse=lambda team, conn: _Router(self.sources),
                                     marketo=lambda: self.marketo, notifier=self.notifier)
        entry.install(self.services)

    def start(self):
        return runs.start_initial_sync(self.store, self.queue, self.store.get_connection("T1", self.connection.id))

    def work(self) -> None:
        SimpleWorker([self.queue], connection=self.store.redis).work(burst=True)

    def kept(self, entity: str) -> list[dict]:
        return expected_kept(self.sources[entity].records)


class _Router:
    """One Dataverse client serving both entities (as the real client does)."""

    def __init__(self, sources: dict[str, FakeDataverse]) -> None:
        self.sources = sources

    def iter_pages(self, entity: str, select: list[str], **kwargs):
        return self.sources[entity].iter_pages(entity, select, **kwargs)

    def count(self, entity: str, *, filter_attribute: str | None = None) -> int:
        return self.sources[entity].count(entity, filter_attribute=filter_attribute)


@pytest.fixture
def world(store: Store, queue: Queue) -> Iterator[World]:
    w = World(store, queue)
    yield w
    entry.install(None)


def test_a_run_enqueues_one_job_per_entity_and_finishes_exactly(world: World) -> None:
    run = world.start()
    assert world.queue.count == 2
    world.work()
    run = world.store.get_run("T1", run.id)
    assert run.status == RunStatus.finished and run.finished_at
    for progress in run.entities:
        kept = world.kept(progress.entity.value)
        assert progress.done and progress.written == len(kept) and progress.estimated == len(kept)
    assert world.store.get_connection("T1", world.connection.id).state == FlowState.synced
    assert world.notifier.count("completed") == 1 and world.notifier.count("paused") == 0
    assert world.store.delta_links.get("T1", world.connection.id, Entity.lead.value) == "delta:1"
    assert ("T1", run.id) not in world.store.active_runs


def test_job_arguments_are_ids_only(world: World) -> None:
    world.start()
    for job_id in world.queue.get_job_ids():
        job = Job.fetch(job_id, connection=world.store.redis)
        assert all(isinstance(a, str) and len(a) < 40 for a in job.args) and not job.kwargs


def test_quota_pauses_the_run_and_resume_finishes_it(world: World) -> None:
    def quota_after_4(number: int) -> None:
        if number > 4:
            raise DailyQuotaExceeded("607", "quota")

    world.marketo.before_call = quota_after_4
    run = world.start()
    world.work()
    paused = world.store.get_run("T1", run.id)
    assert paused.status == RunStatus.paused and "daily API quota" in paused.message
    assert world.notifier.count("paused") == 1 and world.notifier.count("completed") == 0
    assert world.store.get_connection("T1", world.connection.id).state == FlowState.paused

    world.marketo.before_call = lambda n: None
    runs.resume_run(world.store, world.queue, "T1", run.id)
    world.work()
    done = world.store.get_run("T1", run.id)
    assert done.status == RunStatus.finished and done.message is None
    for progress in done.entities:
        assert progress.written == len(world.kept(progress.entity.value))
    assert world.notifier.count("completed") == 1


def test_cancel_stops_running_jobs_at_a_batch_boundary(world: World) -> None:
    run_id = ""
    stopped = threading.Event()

    def cancel_on_third(number: int) -> None:
        if number == 3:
            runs.request_cancel(world.store, "T1", run_id)
        if number > 3:
            stopped.wait(0.3)  # slow writes, so the cancel lands mid-run

    world.marketo.before_call = cancel_on_third
    run_id = world.start().id
    world.work()
    run = world.store.get_run("T1", run_id)
    assert run.status == RunStatus.cancelled
    lead = next(p for p in run.entities if p.entity == Entity.lead)
    assert 0 < lead.written < len(world.kept("lead"))
    assert world.notifier.count("completed") == 1
    with pytest.raises(Exception, match="only a paused or failed"):
        runs.resume_run(world.store, world.queue, "T1", run_id)


def test_a_redis_outage_ends_the_job_without_failing_the_run_and_a_sweep_resumes_it(world: World) -> None:
    def redis_gone_at_the_5th_call(number: int) -> None:
        if number == 5:  # as the Marketo limiter's script call raises when Redis is unreachable
            raise redis.ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    world.marketo.before_call = redis_gone_at_the_5th_call
    run = world.start()
    state = RunState(world.store, "T1", run.id)
    with pytest.raises(redis.ConnectionError):
        entity_job.run_entity(world.services, "T1", run.id, Entity.lead, job_id=state.load(Entity.lead).job_id)
    interrupted = state.load(Entity.lead)
    assert interrupted.state == EntityState.running and interrupted.message is None
    assert world.store.get_run("T1", run.id).status == RunStatus.running
    assert not world.store.sync_leased("T1", world.connection.id, Entity.lead.value)

    assert sweep(world.store, world.queue, lease_seconds=1) == [f"sync-{run.id}-lead-2"]
    world.work()
    finished = world.store.get_run("T1", run.id)
    assert finished.status == RunStatus.finished
    for progress in finished.entities:
        assert progress.written == len(world.kept(progress.entity.value)) and progress.failed == 0


def test_sweeper_revives_a_job_whose_worker_died(world: World) -> None:
    run = world.start()
    state = RunState(world.store, "T1", run.id)
    lead_job = Job.fetch(state.load(Entity.lead).job_id, connection=world.store.redis)
    assert sweep(world.store, world.queue, lease_seconds=1) == []  # queued jobs are fine

    # The lead job "started" long ago on a worker that is gone: no lease, nobody running it.
    world.queue.remove(lead_job)
    lead_job.set_status(JobStatus.STARTED)
    lead_job.started_at = datetime.now(UTC) - timedelta(minutes=5)
    lead_job.save()
    state.set_state(Entity.lead, EntityState.running)
    contact_lease = state.lease(world.connection.id, Entity.contact, ttl=30)
    assert contact_lease.take()  # the contact job looks alive: its lease is held
    state.set_state(Entity.contact, EntityState.running)

    revived = sweep(world.store, world.queue, lease_seconds=1)
    assert revived == [f"sync-{run.id}-lead-2"]
    assert state.load(Entity.lead).job_id == revived[0] and state.load(Entity.lead).state == EntityState.queued
    contact_lease.release()
    world.work()
    lead = next(p for p in world.store.get_run("T1", run.id).entities if p.entity == Entity.lead)
    assert lead.done and lead.written == len(world.kept("lead"))


def _revived_job_waiting_for_the_lease(world: World, monkeypatch: pytest.MonkeyPatch, run_id: str,
                                        ended: list[str]) -> tuple[threading.Thread, Lease]:
    """A revived lead job that checked its entity and now waits for the lease another job holds."""
    state = RunState(world.store, "T1", run_id)
    job_id = state.load(Entity.lead).job_id
    holder = state.lease(world.connection.id, Entity.lead, ttl=30, owner="the-older-job")
    assert holder.take()
    waiting = threading.Event()
    make_lease = world.store.sync_lease

    def announced_lease(*args: object, **kwargs: object) -> Lease:
        lease = make_lease(*args, **kwargs)
        take = lease.take

        def take_announced(wait: float = 0.0) -> bool:
            waiting.set()
            return take(wait=wait)

        lease.take = take_announced
        return lease

    monkeypatch.setattr(world.store, "sync_lease", announced_lease)
    revived = threading.Thread(target=lambda: ended.append(
        entity_job.run_entity(world.services, "T1", run_id, Entity.lead, job_id=job_id)))
    revived.start()
    assert waiting.wait(10), "the revived job never asked for the lease"
    return revived, holder


def test_a_job_that_waited_for_the_lease_does_not_rerun_an_entity_finished_meanwhile(
        world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """The job holding the lease finishes the entity while the revived one waits: once the lease is
    free the revived job must stop, not sync the entity again."""
    run = world.start()
    state = RunState(world.store, "T1", run.id)
    ended: list[str] = []
    revived, holder = _revived_job_waiting_for_the_lease(world, monkeypatch, run.id, ended)
    state.set_state(Entity.contact, EntityState.done)
    settle(world.store, world.notifier, state.set_state(Entity.lead, EntityState.done, lease=holder))
    holder.release()
    revived.join(timeout=30)

    assert ended == ["gone"]  # the run finished while it waited
    assert world.marketo.calls_made == 0
    assert world.store.get_run("T1", run.id).status == RunStatus.finished
    assert world.notifier.count("completed") == 1


def test_a_job_that_waited_for_the_lease_stops_when_a_newer_job_took_the_entity(
        world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    run = world.start()
    ended: list[str] = []
    revived, holder = _revived_job_waiting_for_the_lease(world, monkeypatch, run.id, ended)
    newer = runs.enqueue_entity(world.store, world.queue, "T1", run.id, Entity.lead)
    holder.release()
    revived.join(timeout=30)

    assert ended == ["superseded"]
    assert world.marketo.calls_made == 0
    assert RunState(world.store, "T1", run.id).load(Entity.lead).job_id == newer
