"""`/connect-dynamics conflicts [entity]`: arguments, and the answer's view (escaped, bounded)."""

from __future__ import annotations

import pytest

from bot.errors import BotError
from bot.models import Direction, Entity, Side
from bot.steps.conflicts import parse_entities
from bot.store import Conflict, SyncError, WriteBackRun
from bot.views.conflicts import conflicts_message, no_conflicts_message, write_back_line
from bot.views.errors import error_line
from bot.views.kit import MAX_MESSAGE_BLOCKS
from tests.unit.test_views_escaping import EVIL, assert_escaped

NOW = 1_800_000_000.0


@pytest.mark.parametrize(("words", "entities"), [
    ([], (Entity.contact, Entity.lead)), (["leads"], (Entity.lead,)), (["Contact"], (Entity.contact,)),
])
def test_arguments(words: list[str], entities: tuple[Entity, ...]) -> None:
    assert parse_entities(words) == entities


@pytest.mark.parametrize("words", [["account"], ["lead", "2h"], ["<!channel>"]])
def test_bad_arguments_say_the_usage_escaped(words: list[str]) -> None:
    with pytest.raises(BotError) as refused:
        parse_entities(words)
    assert "Usage" in refused.value.user_message and "<!channel>" not in refused.value.user_message


def _conflict(i: int, winner: Side = Side.marketo) -> Conflict:
    return Conflict(entity="lead", record_id=EVIL, field=EVIL, marketo_value=EVIL * 20, dynamics_value=None,
                    winner=winner, at=NOW - i)


def test_the_answer_escapes_outside_text_and_names_the_winner() -> None:
    message = conflicts_message([_conflict(0), _conflict(1, Side.dynamics)], 2, "")
    assert_escaped(message, shown=4)
    text = str(message.to_dict())
    assert "Marketo's value kept" in text and "Dynamics' value kept" in text and "_empty_" in text


def test_twenty_long_conflicts_fit_a_message() -> None:
    message = conflicts_message([_conflict(i) for i in range(20)], 900, " for leads")
    assert len(message.blocks) <= MAX_MESSAGE_BLOCKS
    assert "20 most recent shown" in str(message.to_dict())


def test_no_conflicts_escapes_its_scope() -> None:
    assert "<!channel>" not in no_conflicts_message(f" {EVIL}").text


def test_the_status_line_of_the_write_back_counts_what_it_did() -> None:
    run = WriteBackRun(at=NOW - 120, status="done", counts={"changes": 12, "echoes": 3, "records_written": 5,
                                                            "marketo_won": 1, "dynamics_won": 1, "failed": 2})
    assert write_back_line(run, NOW) == ("*Marketo → Dynamics* — last run 2 min ago (done) · 12 changes read, "
                                         "3 our own · 5 records written · 2 conflicts · 2 refused by Dynamics")


def test_an_error_of_the_write_back_says_its_direction_and_that_it_is_not_retried() -> None:
    entry = SyncError(entity="lead", id=EVIL, email=EVIL, code="0x80040203", reason=EVIL, first_failed_at=NOW,
                      last_failed_at=NOW, direction=Direction.to_dynamics)
    line = error_line(entry, 5)
    assert "Marketo → Dynamics" in line and "written again when the person changes" in line
    assert "<!channel>" not in line
