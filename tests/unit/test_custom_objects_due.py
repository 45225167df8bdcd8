"""When the initial sync starts the custom tables' job: once the people they link to are written."""

from __future__ import annotations

from bot.models import Entity, EntityProgress, RunStatus, SyncRun
from bot.sync.custom_objects import plan_custom_objects, reachable_tables
from bot.sync.custom_sync import linked_people_written
from tests.unit.test_custom_objects_plan import PROJECT

PLANS, _ = plan_custom_objects(reachable_tables([PROJECT]), {"new_project": ["new_name"]}, set())


def _run(done: set[Entity], *entities: Entity) -> SyncRun:
    return SyncRun(team_id="T1", connection_id="c1", requester="U1", status=RunStatus.running,
                   entities=[EntityProgress(entity=e, done=e in done) for e in entities])


def test_due_when_the_linked_people_are_done_while_other_entities_still_run() -> None:
    assert PLANS[0].link.person == "contact"
    run = _run({Entity.contact}, Entity.lead, Entity.contact, Entity.opportunity)
    assert linked_people_written(PLANS, run, Entity.contact, run_finished=False)


def test_not_due_before_the_linked_people_are_done_nor_again_for_other_entities() -> None:
    running = _run({Entity.lead}, Entity.lead, Entity.contact)
    assert not linked_people_written(PLANS, running, Entity.lead, run_finished=False)
    finished = _run({Entity.lead, Entity.contact}, Entity.lead, Entity.contact)
    assert not linked_people_written(PLANS, finished, Entity.lead, run_finished=True)  # the contact's turn was it


def test_a_run_without_the_linked_people_makes_it_due_when_it_finishes() -> None:
    leads_only = _run({Entity.lead}, Entity.lead)
    assert not linked_people_written(PLANS, leads_only, Entity.lead, run_finished=False)
    assert linked_people_written(PLANS, leads_only, Entity.lead, run_finished=True)


def test_tables_linked_to_leads_and_to_contacts_wait_for_both() -> None:
    project = PLANS[0]
    on_leads = project.model_copy(update={"table": "new_leadnote", "link": project.link.model_copy(
        update={"person": "lead"})})
    both = [project, on_leads]
    leads_done = _run({Entity.lead}, Entity.lead, Entity.contact)
    assert not linked_people_written(both, leads_done, Entity.lead, run_finished=False)
    people_done = _run({Entity.lead, Entity.contact}, Entity.lead, Entity.contact)
    assert linked_people_written(both, people_done, Entity.contact, run_finished=False)
