""""Sync Person to Microsoft" end to end: Marketo's Call Webhook (the emulator's trigger campaign, or
direct calls) reaches `POST /marketo/webhook` of the real web app over loopback, the job runs on real
RQ workers against the emulators and real Redis."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from rq import SimpleWorker, Worker
from rq.job import Job

from bot.app import build_app
from bot.audit import AuditLog
from bot.metrics import WEBHOOKS
from bot.models import DynamicsLock, Entity
from bot.steps import ongoing
from bot.sync import incremental
from bot.sync.person import error_key
from bot.web import create_web_app
from bot.webhooks_in import MARKETO_MAX_BODY
from sandbox.marketo_webhooks import TriggerCampaign, WebhookDefinition
from sandbox.polling import wait_for
from sandbox.server import ServerThread
from tests.integration.sync_harness import SyncHarness, synced_world

SECRET = "marketo-webhook-secret"
TEMPLATE = '{"leadId": {{lead.Id}}}'


@pytest.fixture
def world(key_prefix: str) -> Iterator[tuple[SyncHarness, str]]:
    settings = {"MARKETO_WEBHOOK_SECRET": SECRET, "SLACK_SIGNING_SECRET": "signing"}
    for harness in synced_world(key_prefix, {"lead": 20, "contact": 5}, settings=settings):
        harness.store.take_dynamics_lock(DynamicsLock(url=harness.dynamics.url, team_id="T1",
                                                      connection_id=harness.connection.id))
        harness.store.set_active_connection("T1", harness.connection.id)
        server = ServerThread(create_web_app(build_app(harness.container), harness.container)).start()
        yield harness, f"{server.url}/marketo/webhook"
        server.stop()


def call(url: str, lead_id: Any, token: str | None = SECRET, **extra: Any) -> httpx.Response:
    headers = {"X-Webhook-Token": token} if token is not None else {}
    return httpx.post(url, json={"leadId": lead_id, **extra}, headers=headers, timeout=10)


def run_jobs(world: SyncHarness) -> None:
    SimpleWorker([world.container.queue], connection=world.store.redis).work(burst=True)


def dynamics_lead(world: SyncHarness, lead_id: str) -> dict[str, Any] | None:
    with world.container.dataverse("T1", world.connection.id) as client:
        rows = client.read_by_ids(Entity.lead, [lead_id], ["firstname", "lastname", "emailaddress1", "subject"])
    return rows[0] if rows else None


def test_wrong_or_missing_token_is_refused_with_no_effect(world: tuple[SyncHarness, str]) -> None:
    harness, url = world
    person = harness.marketo.create_by_person({"email": "eve@example.com", "lastName": "Eve"})
    assert call(url, person, token="wrong").status_code == 401
    assert call(url, person, token=None).status_code == 401
    assert httpx.post(url, content=b"not json", headers={"X-Webhook-Token": SECRET}).status_code == 400
    assert call(url, "12").status_code == 400  # the id must be a number, as {{lead.Id}} renders it
    assert harness.container.queue.count == 0
    assert harness.marketo.lead_by("id", person).get("dynamicsLeadId") is None


def test_a_new_person_gets_one_lead_linked_back(world: tuple[SyncHarness, str]) -> None:
    harness, url = world
    harness.marketo.add_trigger_campaign(TriggerCampaign(
        WebhookDefinition(name="Sync Person to Microsoft", url=url, template=TEMPLATE,
                          headers={"X-Webhook-Token": SECRET}),
        trigger="Lead is Created"))
    leads_before = harness.dynamics.count_records("lead")
    person = harness.marketo.create_by_person({"email": "ann@example.com", "firstName": "Ann", "lastName": "Lee"})
    [delivery] = wait_for(harness.marketo.webhook_deliveries, "the webhook call")
    assert delivery.status == 202

    run_jobs(harness)
    lead_id = harness.marketo.lead_by("id", person)["dynamicsLeadId"]
    lead = dynamics_lead(harness, lead_id)
    assert lead is not None and (lead["firstname"], lead["lastname"]) == ("Ann", "Lee")
    assert lead["emailaddress1"] == "ann@example.com" and lead["subject"]
    assert harness.dynamics.count_records("lead") == leads_before + 1

    # The ongoing sync then finds the person by the new id: no second person in Marketo.
    persons = harness.marketo.lead_count()
    assert incremental.run_incremental(harness.container.sync, "T1", harness.connection.id, Entity.lead) == "done"
    assert harness.marketo.lead_count() == persons


def test_two_deliveries_at_once_on_two_workers_make_one_lead(world: tuple[SyncHarness, str]) -> None:
    harness, url = world
    queue = harness.container.queue
    person = harness.marketo.create_by_person({"email": "bo@example.com", "lastName": "Bo"})
    leads_before = harness.dynamics.count_records("lead")
    finished = queue.finished_job_registry
    done_before = set(finished.get_job_ids())  # the initial sync's jobs
    for _ in range(2):
        harness.spawn_worker()
    wait_for(lambda: [w.get_state() for w in Worker.all(queue=queue)] == ["idle", "idle"], "two idle workers",
             timeout=60)
    answers: list[int] = []
    calls = [threading.Thread(target=lambda: answers.append(call(url, person).status_code)) for _ in range(2)]
    for thread in calls:
        thread.start()
    for thread in calls:
        thread.join()
    assert answers == [202, 202]
    wait_for(lambda: len(set(finished.get_job_ids()) - done_before) == 2, "both jobs done", timeout=60)
    jobs = Job.fetch_many(list(set(finished.get_job_ids()) - done_before), connection=harness.store.redis)
    assert len({job.worker_name for job in jobs if job}) == 2  # one delivery each, at the same time
    assert sorted(job.return_value() for job in jobs if job) == ["created", "updated"]
    assert harness.dynamics.count_records("lead") == leads_before + 1
    lead_id = harness.marketo.lead_by("id", person)["dynamicsLeadId"]
    assert dynamics_lead(harness, lead_id)["lastname"] == "Bo"


def test_nothing_is_written_while_the_ongoing_sync_is_disabled(world: tuple[SyncHarness, str]) -> None:
    harness, url = world
    ongoing.disable(harness.store, AuditLog(harness.store), "T1", "U0ADMIN")
    person = harness.marketo.create_by_person({"email": "off@example.com", "lastName": "Off"})
    assert call(url, person).status_code == 202
    [job] = harness.container.queue.get_jobs()
    run_jobs(harness)
    assert job.latest_result().return_value == "disabled"
    assert harness.marketo.lead_by("id", person).get("dynamicsLeadId") is None


def test_a_person_lacking_a_required_column_goes_on_the_error_list(world: tuple[SyncHarness, str]) -> None:
    harness, url = world
    person = harness.marketo.create_by_person({"email": "nolast@example.com", "firstName": "No"})
    leads_before = harness.dynamics.count_records("lead")
    assert call(url, person).status_code == 202
    run_jobs(harness)
    assert harness.dynamics.count_records("lead") == leads_before
    assert harness.marketo.lead_by("id", person).get("dynamicsLeadId") is None
    [entry] = harness.store.sync_errors.recent("T1", harness.connection.id, ["lead"], None, 10)
    assert (entry.id, entry.email, entry.code) == (error_key(person), "nolast@example.com", "required")
    assert "lastname" in entry.reason

    harness.marketo.change_by_person(person, {"lastName": "Later"})
    assert call(url, person).status_code == 202
    run_jobs(harness)
    assert harness.store.sync_errors.recent("T1", harness.connection.id, ["lead"], None, 10) == []
    assert dynamics_lead(harness, harness.marketo.lead_by("id", person)["dynamicsLeadId"])["lastname"] == "Later"


def test_a_linked_person_is_updated_and_a_deleted_lead_is_made_again(world: tuple[SyncHarness, str]) -> None:
    harness, url = world
    linked_id = harness.dynamics.record_id("lead", 3)
    person = harness.marketo.lead_by("dynamicsLeadId", linked_id)["id"]
    harness.marketo.change_by_person(person, {"firstName": "Renamed"})
    leads_before = harness.dynamics.count_records("lead")
    assert call(url, person).status_code == 202
    run_jobs(harness)
    assert dynamics_lead(harness, linked_id)["firstname"] == "Renamed"
    assert harness.dynamics.count_records("lead") == leads_before

    harness.dynamics.delete_record("lead", 3)
    assert call(url, person).status_code == 202
    run_jobs(harness)
    new_id = harness.marketo.lead_by("id", person)["dynamicsLeadId"]
    assert new_id != linked_id and dynamics_lead(harness, new_id)["firstname"] == "Renamed"

    odd = harness.marketo.create_by_person({"email": "odd@example.com", "lastName": "Odd",
                                            "dynamicsLeadId": "not-a-dataverse-id"})
    assert call(url, odd).status_code == 202
    run_jobs(harness)
    assert dynamics_lead(harness, harness.marketo.lead_by("id", odd)["dynamicsLeadId"])["lastname"] == "Odd"


def test_a_choice_label_is_written_as_its_option_value_as_the_write_back_does(
    world: tuple[SyncHarness, str],
) -> None:
    harness, url = world
    linked_id = harness.dynamics.record_id("lead", 5)
    person = harness.marketo.lead_by("dynamicsLeadId", linked_id)["id"]
    harness.marketo.change_by_person(person, {"leadSource": "Partner"})
    assert call(url, person).status_code == 202
    run_jobs(harness)
    with harness.container.dataverse("T1", harness.connection.id) as client:
        [row] = client.read_by_ids(Entity.lead, [linked_id], ["leadsourcecode"])
    assert row["leadsourcecode"] == 100_000_003
    assert harness.store.sync_errors.recent("T1", harness.connection.id, ["lead"], None, 10) == []


def test_the_team_parameter_picks_the_connection_and_data_value_changes_enqueue_the_write_back(
    world: tuple[SyncHarness, str],
) -> None:
    harness, url = world
    person = harness.marketo.lead_by("dynamicsLeadId", harness.dynamics.record_id("lead", 1))["id"]
    assert call(f"{url}?team=T9", person).status_code == 404  # no synced connection in that team
    for _ in range(3):
        assert call(f"{url}?team=T1", person, event="changed").status_code == 202
    [job] = harness.container.queue.get_jobs()
    assert job.func_name == "bot.sync.entry.write_back_job"
    assert job.args == ("T1", harness.connection.id)


def test_bodies_are_capped_failures_are_never_5xx_and_every_call_is_counted(world: tuple[SyncHarness, str]) -> None:
    harness, url = world
    rejected, errors = (WEBHOOKS.labels("marketo", outcome) for outcome in ("rejected", "error"))
    rejected_before, errors_before = rejected._value.get(), errors._value.get()
    huge = b'{"leadId": 1, "pad": "' + b"x" * (MARKETO_MAX_BODY + 1) + b'"}'
    assert httpx.post(url, content=huge, headers={"X-Webhook-Token": SECRET}).status_code == 413
    assert call(url, 1, token="wrong").status_code == 401
    # A record Redis holds that cannot be read (an internal failure) still gets a 4xx, never a 5xx.
    harness.store.redis.set(harness.store.keys.active_connection("T7"), "c7")
    harness.store.redis.set(harness.store.keys.connection("T7", "c7"), "not json")
    answer = call(f"{url}?team=T7", 1)
    assert answer.status_code == 429 and answer.json() == {"error": "try again later"}
    assert (rejected._value.get(), errors._value.get()) == (rejected_before + 2, errors_before + 1)
    assert harness.container.queue.count == 0
