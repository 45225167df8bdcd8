import json

from bot.models import Connection
from bot.views import ids
from bot.views.step3 import DuplicateSummary, enable_sync_modal
from tests.unit.test_views_kit import blocks_of, text_of, view_dict


def test_computing_state():
    data = view_dict(enable_sync_modal("c42", None, None))
    dumped = text_of(data)
    assert "computing…" in dumped and "does not dedupe" in dumped
    assert data["submit"]["text"] == "Begin sync" and data["callback_id"] == ids.ENABLE_SYNC_CALLBACK
    assert "approval" in dumped
    assert json.loads(data["private_metadata"]) == {"connection_id": "c42"}
    (email,) = blocks_of(data, "input")
    assert email["block_id"] == ids.NOTIFY_EMAIL_BLOCK
    assert email["element"]["type"] == "email_text_input"
    assert email["element"]["action_id"] == ids.NOTIFY_EMAIL_ACTION and "initial_value" not in email["element"]


def test_duplicate_report_and_email_refill():
    report = DuplicateSummary(total_duplicate_emails=1234, records_involved=2600,
                              examples=[("ann@x.com", 5), ("<bob>@y.com", 3)])
    data = view_dict(enable_sync_modal("c42", report, "me@example.com"))
    dumped = text_of(data)
    assert "1,234 addresses" in dumped and "2,600 records" in dumped
    assert "ann@x.com — 5 records" in dumped and "&lt;bob&gt;@y.com" in dumped
    (email,) = blocks_of(data, "input")
    assert email["element"]["initial_value"] == "me@example.com"


def test_no_duplicates():
    data = view_dict(enable_sync_modal("c42", DuplicateSummary(total_duplicate_emails=0), None))
    assert "Duplicate emails:* none" in text_of(data)


def test_summary_from_connection_shows_the_stored_total_not_the_examples_sum():
    conn = Connection(team_id="T1", requester="U1")
    assert DuplicateSummary.from_connection(conn) is None
    examples = [("a@x.com", 3), ("b@x.com", 2), ("c@x.com", 2), ("d@x.com", 2), ("e@x.com", 2)]
    conn.duplicate_count, conn.duplicate_records, conn.duplicate_examples = 22, 47, examples
    summary = DuplicateSummary.from_connection(conn)
    assert summary == DuplicateSummary(total_duplicate_emails=22, records_involved=47, examples=examples)
    dumped = text_of(view_dict(enable_sync_modal("c42", summary, None)))
    assert "22 addresses are shared by more than one Dynamics record (47 records)" in dumped


def test_a_report_saved_without_its_record_total_shows_no_record_count():
    conn = Connection(team_id="T1", requester="U1", duplicate_count=22, duplicate_examples=[("a@x.com", 3)])
    dumped = text_of(view_dict(enable_sync_modal("c42", DuplicateSummary.from_connection(conn), None)))
    assert "22 addresses are shared by more than one Dynamics record." in dumped and "3 records)" not in dumped
