"""`/connect-dynamics errors [entity] [since]`: arguments, and the answer's view (escaped, bounded)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.errors import BotError
from bot.models import Entity
from bot.steps.errors import ErrorsQuery, parse_query
from bot.store import SyncError
from bot.views.errors import errors_message, no_errors_message
from bot.views.kit import MAX_MESSAGE_BLOCKS
from tests.unit.test_views_escaping import ESCAPED, EVIL, assert_escaped

NOW = 1_800_000_000.0


@pytest.mark.parametrize(("words", "entities", "since"), [
    ([], tuple(Entity), None),
    (["leads"], (Entity.lead,), None),
    (["Contact", "2h"], (Entity.contact,), NOW - 7200),
    (["3d", "account"], (Entity.account,), NOW - 3 * 86400),
    (["30m"], tuple(Entity), NOW - 1800),
    (["2026-01-31"], tuple(Entity), datetime(2026, 1, 31, tzinfo=UTC).timestamp()),
])
def test_arguments(words: list[str], entities: tuple[Entity, ...], since: float | None) -> None:
    assert parse_query(words, NOW) == ErrorsQuery(entities, since)


@pytest.mark.parametrize("words", [["deals"], ["2x"], ["lead", "2h", "extra"], ["<!channel>"]])
def test_bad_arguments_say_the_usage(words: list[str]) -> None:
    with pytest.raises(BotError) as refused:
        parse_query(words, NOW)
    assert "Usage" in refused.value.user_message


def test_scope_names_the_table_and_time() -> None:
    assert ErrorsQuery((Entity.lead,), datetime(2026, 1, 31, tzinfo=UTC).timestamp()).scope == \
        " for leads since 2026-01-31 00:00 UTC"
    assert ErrorsQuery().scope == ""


def _entry(i: int, attempts: int = 1) -> SyncError:
    return SyncError(entity="lead", id=EVIL, email=EVIL, code=EVIL, reason=EVIL * 20, first_failed_at=NOW,
                     last_failed_at=NOW - i, attempts=attempts)


def test_the_errors_answer_escapes_and_marks_permanent_errors() -> None:
    message = errors_message([_entry(0, attempts=5), _entry(1)], 2, "", 5, csv_follows=True)
    assert_escaped(message, shown=4)
    text = str(message.to_dict())
    assert "no more retries" in text and "retried next cycle" in text and "CSV" in text


def test_twenty_long_entries_fit_a_message() -> None:
    message = errors_message([_entry(i) for i in range(20)], 5000, " for leads", 5, csv_follows=True)
    assert len(message.blocks) <= MAX_MESSAGE_BLOCKS
    assert "20 most recent shown" in str(message.to_dict())


def test_no_errors_escapes_its_scope() -> None:
    assert ESCAPED in no_errors_message(f" {EVIL}").text
