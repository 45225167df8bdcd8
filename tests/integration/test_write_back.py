"""The Marketo → Dynamics write-back against the emulators over loopback, with real Redis: changes made
by people in Marketo reach Dynamics, collisions follow Marketo's rules whichever cycle runs first,
refused values are listed, and neither side echoes the other's writes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from rq import SimpleWorker

from bot.models import Direction, Entity, Side
from bot.steps import conflicts as conflicts_step
from bot.steps import status as status_step
from bot.sync import incremental, write_back
from tests.integration.sync_harness import SyncHarness, synced_world

LEADS_PATH = "/rest/v1/leads.json"


def with_sync_user(harness: SyncHarness) -> SyncHarness:
    """The connection knows its sync user (Step 1's WhoAmI), whose writes Dynamics stamps as `modifiedby`."""
    with harness.container.dataverse("T1", harness.connection.id) as client:
        user_id = client.whoami().user_id
    harness.store.update_connection("T1", harness.connection.id,
                                    lambda c: c.model_copy(update={"sync_user_id": user_id}))
    return harness


@pytest.fixture
def world(key_prefix: str) -> Iterator[SyncHarness]:
    worlds = synced_world(key_prefix, {"lead": 200, "contact": 100})
    yield with_sync_user(next(worlds))
    next(worlds, None)


def sync_user(world: SyncHarness) -> str:
    connection = world.store.get_connection("T1", world.connection.id)
    assert connection is not None and connection.sync_user_id
    return connection.sync_user_id


def person(world: SyncHarness, entity: Entity, index: int) -> dict[str, Any]:
    found = world.marketo.lead_by(entity.marketo_id_field, world.dynamics.record_id(entity.value, index))
    assert found is not None
    return found


def dynamics(world: SyncHarness, entity: Entity, index: int, *columns: str) -> dict[str, Any]:
    with world.container.dataverse("T1", world.connection.id) as client:
        rows = client.read_by_ids(entity, [world.dynamics.record_id(entity.value, index)],
                                  [*columns, "_modifiedby_value"])
    return rows[0]


def write_back_cycle(world: SyncHarness) -> str:
    return write_back.run_write_back(world.container.sync, "T1", world.connection.id)


def forward_cycles(world: SyncHarness) -> None:
    for entity in (Entity.lead, Entity.contact):
        assert incremental.run_incremental(world.container.sync, "T1", world.connection.id, entity) == "done"


def marketo_writes(world: SyncHarness) -> int:
    return sum(1 for c in world.marketo.calls(LEADS_PATH) if c.method == "POST" and c.admitted)


def test_a_persons_change_in_marketo_reaches_dynamics_once(world: SyncHarness) -> None:
    forward_cycles(world)  # Marketo is caught up with Dynamics
    lead, contact = person(world, Entity.lead, 3), person(world, Entity.contact, 4)
    world.marketo.change_by_person(lead["id"], {"firstName": "Formfilled", "phone": "+1-555-0303"})
    world.marketo.change_by_person(contact["id"], {"lastName": "Newname"})
    stranger = world.marketo.create_by_person({"email": "nobody@example.com", "firstName": "Unlinked"})
    world.marketo.change_by_person(stranger, {"firstName": "StillUnlinked"})

    assert write_back_cycle(world) == "done"
    row = dynamics(world, Entity.lead, 3, "firstname", "telephone1")
    assert (row["firstname"], row["telephone1"]) == ("Formfilled", "+1-555-0303")
    assert row["_modifiedby_value"] == sync_user(world)
    assert dynamics(world, Entity.contact, 4, "lastname")["lastname"] == "Newname"
    ours = world.dynamics.committed(sync_user(world))
    assert sorted((c.entity, c.record_id) for c in ours) == sorted(
        [("lead", world.dynamics.record_id("lead", 3)), ("contact", world.dynamics.record_id("contact", 4))])
    run = world.store.write_back.last_run("T1", world.connection.id)
    assert run is not None and run.status == "done" and run.counts["records_written"] == 2
    world.store.set_active_connection("T1", world.connection.id)
    assert "2 records written" in str(status_step.status(world.store, "T1").to_dict())

    # Our PATCHes are the sync user's, over records a person last edited long before the Dynamics →
    # Marketo cycles caught up: those cycles send nothing back; a second write-back finds nothing new.
    before, logged = marketo_writes(world), len(world.marketo.activities())
    forward_cycles(world)
    assert (marketo_writes(world), len(world.marketo.activities())) == (before, logged)
    assert write_back_cycle(world) == "done"
    assert len(world.dynamics.committed(sync_user(world))) == 2

    # The sync user edited the contact last (our PATCH, moments ago): a second change in Marketo is written
    # without handing the record over, so the next cycles do not send it back either.
    world.marketo.change_by_person(contact["id"], {"lastName": "Renamed"})
    assert write_back_cycle(world) == "done"
    before = marketo_writes(world)
    forward_cycles(world)
    assert marketo_writes(world) == before


@pytest.mark.parametrize("caught_up", [False, True], ids=["before-any-cycle", "after-a-cycle"])
def test_a_persons_edit_in_dynamics_is_not_hidden_by_the_write_back(world: SyncHarness, caught_up: bool) -> None:
    """The edit is not sent yet when the write-back writes over it: the next cycle sends it although
    the sync user modified the record last (handed over), whether or not a cycle caught up before."""
    if caught_up:
        forward_cycles(world)
    world.dynamics.update_record("lead", 13, jobtitle="Chief Buyer")
    world.marketo.change_by_person(person(world, Entity.lead, 13)["id"], {"firstName": "Formfilled"})
    assert write_back_cycle(world) == "done"  # now the sync user modified the record last
    forward_cycles(world)
    assert person(world, Entity.lead, 13)["title"] == "Chief Buyer"
    assert dynamics(world, Entity.lead, 13, "firstname")["firstname"] == "Formfilled"


def test_a_choice_label_from_marketo_is_written_as_its_option_value(world: SyncHarness) -> None:
    lead = person(world, Entity.lead, 11)
    world.marketo.change_by_person(lead["id"], {"leadSource": "Partner"})
    assert write_back_cycle(world) == "done"
    row = dynamics(world, Entity.lead, 11, "leadsourcecode")
    assert row["leadsourcecode"] == 100_000_003
    assert row["leadsourcecode@OData.Community.Display.V1.FormattedValue"] == "Partner"


def test_dynamics_throttling_is_waited_out_as_retry_after_says(world: SyncHarness) -> None:
    world.marketo.change_by_person(person(world, Entity.lead, 12)["id"], {"firstName": "Throttled"})
    world.dynamics.fail_next(2, 429)  # Retry-After: 1
    assert write_back_cycle(world) == "done"
    assert dynamics(world, Entity.lead, 12, "firstname")["firstname"] == "Throttled"
    assert world.dynamics.throttled >= 2


@pytest.mark.parametrize("marketo_first", [True, False], ids=["write-back first", "forward sync first"])
def test_collisions_follow_marketos_rules_whichever_cycle_runs_first(world: SyncHarness, marketo_first: bool) -> None:
    lead, contact = person(world, Entity.lead, 5), person(world, Entity.contact, 6)
    world.marketo.change_by_person(lead["id"], {"firstName": "MarketoLead"})
    world.marketo.change_by_person(contact["id"], {"firstName": "MarketoContact"})
    world.dynamics.update_record("lead", 5, firstname="DynamicsLead")
    world.dynamics.update_record("contact", 6, firstname="DynamicsContact")

    if marketo_first:
        assert write_back_cycle(world) == "done"
        forward_cycles(world)
    else:
        forward_cycles(world)
        assert write_back_cycle(world) == "done"
    forward_cycles(world)
    write_back_cycle(world)

    # Marketo wins for leads, Dynamics for contacts: both sides hold the winner's value.
    assert dynamics(world, Entity.lead, 5, "firstname")["firstname"] == "MarketoLead"
    assert person(world, Entity.lead, 5)["firstName"] == "MarketoLead"
    assert dynamics(world, Entity.contact, 6, "firstname")["firstname"] == "DynamicsContact"
    assert person(world, Entity.contact, 6)["firstName"] == "DynamicsContact"
    conflicts = world.store.write_back.conflicts("T1", world.connection.id, ["lead", "contact"], 10)
    settled = {(c.entity, c.field, c.marketo_value, c.dynamics_value, c.winner) for c in conflicts}
    assert settled == {("lead", "firstName", "MarketoLead", "DynamicsLead", Side.marketo),
                       ("contact", "firstName", "MarketoContact", "DynamicsContact", Side.dynamics)}

    world.store.set_active_connection("T1", world.connection.id)
    shown = str(conflicts_step.list_conflicts(world.store, "T1", ["leads"]).to_dict())
    assert "MarketoLead" in shown and "DynamicsLead" in shown and "Contact" not in shown


def test_a_value_dynamics_refuses_is_listed_and_the_rest_of_the_batch_written(world: SyncHarness) -> None:
    refused, fine = person(world, Entity.lead, 7), person(world, Entity.lead, 8)
    world.marketo.change_by_person(refused["id"], {"firstName": "X" * 80})  # Dynamics' firstname holds 50
    world.marketo.change_by_person(fine["id"], {"firstName": "Fine"})

    assert write_back_cycle(world) == "done"
    assert dynamics(world, Entity.lead, 8, "firstname")["firstname"] == "Fine"
    errors = world.store.sync_errors.recent("T1", world.connection.id, ["lead"], None, 10)
    assert [(e.id, e.direction) for e in errors] == [(world.dynamics.record_id("lead", 7), Direction.to_dynamics)]
    assert "maximum" in errors[0].reason and errors[0].email == refused["email"]
    # The Dynamics → Marketo retries never pick it up (they would overwrite the person's value).
    assert world.store.sync_errors.retry_candidates("T1", world.connection.id, "lead", 5, 10) == []

    world.marketo.change_by_person(refused["id"], {"firstName": "Shorter"})
    assert write_back_cycle(world) == "done"
    assert world.store.sync_errors.count("T1", world.connection.id, ["lead"]) == 0
    assert dynamics(world, Entity.lead, 7, "firstname")["firstname"] == "Shorter"


def test_a_refused_value_is_retried_with_the_persons_current_value_up_to_the_attempt_bound(
    world: SyncHarness,
) -> None:
    stuck, fixed = person(world, Entity.lead, 7), person(world, Entity.lead, 9)
    world.marketo.change_by_person(stuck["id"], {"firstName": "X" * 80})  # Dynamics' firstname holds 50
    world.marketo.change_by_person(fixed["id"], {"firstName": "Y" * 80})
    assert write_back_cycle(world) == "done"
    assert world.store.sync_errors.count("T1", world.connection.id, ["lead"]) == 2
    # Fixed by our own API user: the change feed drops it as an echo, so only the retry, reading the
    # person as it is now, brings it to Dynamics.
    [result] = world.container.sync.marketo().sync_leads([{"id": fixed["id"], "firstName": "Fixed"}], "id",
                                                         action="updateOnly")
    assert result.status == "updated"

    bound = world.settings.SYNC_RETRY_ATTEMPTS
    for _ in range(bound):
        assert write_back_cycle(world) == "done"
    assert dynamics(world, Entity.lead, 9, "firstname")["firstname"] == "Fixed"
    [error] = world.store.sync_errors.recent("T1", world.connection.id, ["lead"], None, 10)
    assert (error.id, error.attempts) == (world.dynamics.record_id("lead", 7), bound)  # then no more tries
    assert world.store.sync_errors.resolved_counts("T1", world.connection.id) == {"lead-to_dynamics:retried_ok": 1}


def test_no_ping_pong_after_changes_on_both_sides(world: SyncHarness) -> None:
    for index in range(10, 20):
        world.marketo.change_by_person(person(world, Entity.lead, index)["id"], {"firstName": f"M{index}"})
        world.dynamics.update_record("lead", index + 10, firstname=f"D{index}")
    for index in range(10, 15):
        world.marketo.change_by_person(person(world, Entity.contact, index)["id"], {"lastName": f"M{index}"})
        world.dynamics.update_record("contact", index, jobtitle=f"D{index}")

    def round_writes() -> int:
        before = marketo_writes(world) + len(world.dynamics.committed())
        forward_cycles(world)
        write_back_cycle(world)
        return marketo_writes(world) + len(world.dynamics.committed()) - before

    rounds = 0
    while round_writes():
        rounds += 1
        assert rounds < 5, "the two sides keep changing each other"
    quiet = (marketo_writes(world), len(world.dynamics.committed()))
    for _ in range(3):
        assert round_writes() == 0
    assert (marketo_writes(world), len(world.dynamics.committed())) == quiet
    assert world.mismatches(Entity.lead) == [] and world.mismatches(Entity.contact) == []
    # Every change our writes made in Marketo carries the `request id` of a write we remembered.
    ours = {str(attribute["value"]) for activity in world.marketo.activities() if activity["activityTypeId"] == 13
            for attribute in activity["attributes"] if attribute["name"] == "request id"}
    assert ours and world.store.marketo_writes.ours(ours) == ours


def test_the_schedule_enqueues_one_write_back_per_connection_and_coalesces(world: SyncHarness) -> None:
    queue = world.container.queue
    first = write_back.enqueue_write_back(queue, "T1", world.connection.id)
    assert first == write_back.job_id("T1", world.connection.id)
    assert write_back.enqueue_write_back(queue, "T1", world.connection.id) is None  # one is waiting
    due = world.store.incremental.due_at("T1", world.connection.id)
    enqueued = incremental.schedule_due(world.store, queue, world.settings, now=due + 1)
    assert first not in enqueued and len(enqueued) == 2  # the two entities; the write-back was waiting

    world.marketo.change_by_person(person(world, Entity.lead, 9)["id"], {"firstName": "Queued"})
    SimpleWorker([queue], connection=world.store.redis).work(burst=True)
    assert dynamics(world, Entity.lead, 9, "firstname")["firstname"] == "Queued"
    assert write_back.enqueue_write_back(queue, "T1", world.connection.id) == first  # ran: a new one may wait


def test_a_plan_without_leads_writes_contacts_back(key_prefix: str) -> None:
    """Only contacts sync: the changes are asked for with the contacts' id field alone (Marketo refuses
    a field it lacks, and such a plan made no `dynamicsLeadId`)."""
    worlds = synced_world(key_prefix, {"contact": 50})
    contacts_only = with_sync_user(next(worlds))
    try:
        contacts_only.marketo.change_by_person(person(contacts_only, Entity.contact, 2)["id"],
                                               {"lastName": "Contactonly"})
        assert write_back_cycle(contacts_only) == "done"
        assert dynamics(contacts_only, Entity.contact, 2, "lastname")["lastname"] == "Contactonly"
    finally:
        next(worlds, None)
