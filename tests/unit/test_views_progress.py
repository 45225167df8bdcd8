from bot.models import Entity, EntityProgress, RunStatus, SyncRun
from bot.views import ids
from bot.views.progress import paused_message, progress_bar, progress_message, summary_message
from tests.unit.test_views_kit import blocks_of, elements, message_dict, text_of

START = 1_790_000_000.0


def run(**changes) -> SyncRun:
    base = SyncRun(
        id="run1", team_id="T1", connection_id="c1", requester="U1", status=RunStatus.running,
        started_at=START, api_calls=120,
        entities=[
            EntityProgress(entity=Entity.lead, estimated=10_000, read=4200, filtered_out=200,
                           created=3000, updated=900, skipped=50, failed=50),
            EntityProgress(entity=Entity.contact, estimated=2_000, created=2000, done=True),
            EntityProgress(entity=Entity.account, estimated=500),
        ],
    )
    return base.model_copy(update=changes)


def test_progress_bar():
    assert progress_bar(0, 100) == "░" * 20
    assert progress_bar(50, 100) == "█" * 10 + "░" * 10
    assert progress_bar(500, 100) == "█" * 20 and progress_bar(5, 0) == "░" * 20


def test_progress_message_per_entity():
    data = message_dict(progress_message(run(), now=START + 60))
    dumped = text_of(data)
    # lead: 4,000 written of 10,000 in 60 s → 67 records/s, 6,000 left → about 1 min 30 s
    assert "*Leads*  `" + "█" * 8 + "░" * 12 + "` 40% — 4,000 / 10,000" in dumped
    assert "67 records/s" in dumped and "about 1 min 30 s left" in dumped
    assert "200 left out by the sync filter" in dumped and "50 failed, 50 skipped" in dumped
    assert "*Contacts*  `" + "█" * 20 + "` 100% — 2,000 / 2,000 · :white_check_mark: done" in dumped
    assert "*Accounts*" in dumped and "starting…" in dumped
    assert "120 Marketo API calls" in dumped
    (cancel,) = elements(data)
    assert cancel["action_id"] == ids.CANCEL_SYNC_ACTION and cancel["value"] == "run1" and cancel["confirm"]
    assert "6,000 of 12,500" in data["text"]


def test_progress_with_low_estimate_never_exceeds_100_percent():
    low = run(entities=[EntityProgress(entity=Entity.lead, estimated=10, created=40)])
    dumped = text_of(message_dict(progress_message(low, now=START + 4)))
    assert "100% — 40 / 40" in dumped and "finishing" in dumped


def test_progress_message_without_cancel_when_not_running():
    data = message_dict(progress_message(run(status=RunStatus.finished, finished_at=START + 10)))
    assert not blocks_of(data, "actions")


def test_summary_message():
    finished = run(status=RunStatus.finished, finished_at=START + 100)
    data = message_dict(summary_message(finished, quota_left=49_880))
    dumped = text_of(data)
    assert "Sync finished" in dumped
    assert "*Leads*: 3,000 created · 900 updated · 50 skipped · 50 failed · 200 left out" in dumped
    assert "*Contacts*: 2,000 created" in dumped
    assert "*Duration:* 1 min 40 s" in dumped and "*Throughput:* 60 records/s" in dumped
    assert "*Marketo API calls:* 120" in dumped and "*Daily quota left:* 49,880" in dumped
    assert "100 records were skipped or failed" in dumped and not blocks_of(data, "actions")
    assert data["text"] == "Sync finished: 6,000 records in 1 min 40 s"


def test_summary_message_failed_with_reason():
    failed = run(status=RunStatus.failed, finished_at=START + 5, message="Marketo said <no>")
    data = message_dict(summary_message(failed))
    dumped = text_of(data)
    assert "Sync failed" in dumped and "Marketo said &lt;no&gt;" in dumped and "Daily quota" not in dumped


def test_paused_message_has_resume():
    paused = run(status=RunStatus.paused, message="Marketo's daily API quota is used up; resume tomorrow.")
    data = message_dict(paused_message(paused, now=START + 60))
    assert "daily API quota is used up" in text_of(data)
    (resume,) = elements(data)
    assert resume["action_id"] == ids.RESUME_SYNC_ACTION and resume["value"] == "run1"
