"""What the plan, the progress post and the summary say about the Bulk Import path."""

from bot.models import Entity, EntityPlan, EntityProgress, FieldMapping, FieldPlan, RunStatus, SyncRun
from bot.sync.report import summary_text
from bot.sync.write_path import path_text, write_path
from bot.views.fields import plan_summary_lines
from bot.views.progress import progress_message, summary_message
from tests.unit.test_views_kit import message_dict, text_of

START = 1_790_000_000.0


def bulk_run(**changes) -> SyncRun:
    return SyncRun(id="run1", team_id="T1", connection_id="c1", requester="U1", status=RunStatus.running,
                   started_at=START, api_calls=42, entities=[
                       EntityProgress(entity=Entity.lead, estimated=1_200_000, read=400_000, imported=399_990,
                                      skipped=10, parts_uploaded=25, parts_done=12),
                       EntityProgress(entity=Entity.contact, estimated=900, created=900, done=True),
                   ]).model_copy(update=changes)


def test_the_plan_names_each_entity_path_with_its_calls() -> None:
    assert path_text(Entity.lead, 1_200_000, 10, 20_000).startswith("Bulk Import: 1,200,000 records > 20,000; about ")
    assert path_text(Entity.contact, 900, 10, 20_000) == "REST: about 3 API calls"
    assert path_text(Entity.lead, 10, 10, 0).startswith("Bulk Import: always")
    rest, bulk = (write_path(Entity.lead, 1_000_000, 10, minimum) for minimum in (-1, 20_000))
    assert rest == (False, 3334) and bulk.bulk and bulk.calls * 40 < rest.calls
    assert not write_path(Entity.account, 10**6, 10, 0).bulk
    mapping = FieldMapping(source="firstname", read_name="firstname", attribute_type="String",
                           marketo_name="firstName", marketo_type="string", standard=True)
    plan = FieldPlan(entities=[EntityPlan(entity=Entity.lead, mappings=[mapping], id_field="dynLeadId",
                                          record_count=50_000)], bulk_import_min_records=20_000)
    (line,) = plan_summary_lines(plan)
    assert "Bulk Import: 50,000 records > 20,000" in line
    assert "Bulk Import" not in plan_summary_lines(plan.model_copy(update={"bulk_import_min_records": None}))[0]


def test_progress_shows_parts_and_the_summary_the_imported_persons() -> None:
    dumped = text_of(message_dict(progress_message(bulk_run(), now=START + 60)))
    assert "Bulk Import: 25 parts uploaded · 13 importing · 12 done" in dumped
    assert "42 Marketo API calls" in dumped
    finished = bulk_run(status=RunStatus.finished, finished_at=START + 100)
    summary = text_of(message_dict(summary_message(finished)))
    assert "*Leads*: 399,990 imported in 12 Bulk Import parts (created or updated) · 10 skipped" in summary
    assert "*Contacts*: 900 created" in summary and "*Marketo API calls:* 42" in summary
    assert "lead: 399990 imported by Bulk Import, 10 skipped" in summary_text(finished)


def test_a_backfill_through_bulk_import_says_missing_persons_were_created() -> None:
    backfill = bulk_run(status=RunStatus.finished, finished_at=START + 100, backfill_fields={"lead": ["dynRating"]})
    assert "was created with them" in text_of(message_dict(summary_message(backfill)))
    rest = backfill.model_copy(update={"entities": [EntityProgress(entity=Entity.lead, updated=5)]})
    assert "skipped, not created" in text_of(message_dict(summary_message(rest)))
