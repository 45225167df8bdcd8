"""The ongoing sync in the status and the App Home tab, and the answers to `disable` / `enable`."""

from __future__ import annotations

import pytest

from bot.models import Connection, Entity, EntityPlan, FieldPlan, FlowState
from bot.store import ChangeTime, EntityFigures, OngoingFigures, OngoingSwitch
from bot.views.common import home_view, status_blocks
from bot.views.kit import MAX_MESSAGE_BLOCKS, MAX_SECTION_TEXT
from bot.views.status import entity_line, ongoing_blocks, span, switch_message, unchanged_message
from tests.unit.test_views_common import blocks_text
from tests.unit.test_views_kit import text_of, view_dict

NOW = 1_800_000_000.0
LEADS = EntityFigures(entity="lead", last_cycle_at=NOW - 120, caught_up_at=NOW - 180, newest_change_at=NOW - 400,
                      newest_change_from=ChangeTime.read_time, backlog=0, written_last_hour=120,
                      written_last_day=2400, pending_failures=0)
CONNECTION = Connection(
    team_id="T1", requester="U1", state=FlowState.synced, dynamics_url="https://contoso.crm.dynamics.com",
    run_id="run1",
    plan=FieldPlan(entities=[EntityPlan(entity=Entity.lead, mappings=[], id_field="dynamicsLeadId", record_count=10)]),
)


def test_one_entity_in_plain_words() -> None:
    line = entity_line(LEADS, "next cycle in 3 min", NOW)
    assert line.startswith("*Leads* — last cycle 2 min ago · lag 3 min · backlog 0 · written 120 in the last hour, "
                           "2,400 in 24 h · 0 failures waiting for retry · next cycle in 3 min")
    assert "Newest change applied: <!date^1799999600^" in line and "(when its cycle read it)" in line


def test_an_entity_with_no_cycle_yet() -> None:
    line = entity_line(EntityFigures(entity="contact", pending_failures=1, backlog=2500), "next cycle due now", NOW)
    assert line == ("*Contacts* — no cycle yet · lag unknown · backlog 2,500 · written 0 in the last hour, 0 in 24 h · "
            "1 failure waiting for retry · next cycle due now")


@pytest.mark.parametrize(("figures", "header", "next_cycle"), [
    (OngoingFigures(next_cycle_at=NOW + 180, entities=[LEADS]), "*Ongoing sync: on*", "next cycle in 3 min"),
    (OngoingFigures(switch=OngoingSwitch(enabled=True, by="U0ADMIN", at=NOW - 60), next_cycle_at=NOW - 5,
                    entities=[LEADS]), "*Ongoing sync: on* (enabled by <@U0ADMIN> <!date^1799999940^",
     "next cycle due now"),
    (OngoingFigures(switch=OngoingSwitch(enabled=False, by="U0ADMIN", at=NOW - 60), entities=[LEADS]),
     "*Ongoing sync: off* (disabled by <@U0ADMIN> <!date^1799999940^", "no next cycle while off"),
    (OngoingFigures(entities=[LEADS]), "*Ongoing sync: on*", "no cycle scheduled"),
])
def test_the_header_says_on_or_off_and_by_whom(figures: OngoingFigures, header: str, next_cycle: str) -> None:
    blocks = ongoing_blocks(figures, NOW)
    assert len(blocks) == 2
    assert blocks[0].to_dict()["text"]["text"].startswith(header)
    assert next_cycle in blocks[1].to_dict()["text"]["text"]


def test_status_and_home_show_the_ongoing_sync_of_a_synced_connection_within_limits() -> None:
    many = [LEADS.model_copy(update={"entity": f"custom{i}"}) for i in range(80)]
    figures = OngoingFigures(next_cycle_at=NOW + 60, entities=many)
    blocks = status_blocks(CONNECTION, None, NOW, ongoing=figures)
    assert "*Ongoing sync: on*" in blocks_text(blocks) and "custom0" in blocks_text(blocks)
    assert len(blocks) <= MAX_MESSAGE_BLOCKS
    assert all(len(b.to_dict()["text"]["text"]) <= MAX_SECTION_TEXT for b in blocks if b.type == "section")
    assert "*Ongoing sync: on*" in text_of(view_dict(home_view(CONNECTION, None, NOW, ongoing=figures)))


def test_before_the_ongoing_sync_exists_status_does_not_show_it() -> None:
    figures = OngoingFigures(entities=[EntityFigures(entity="lead")])
    syncing = CONNECTION.model_copy(update={"state": FlowState.syncing})
    assert "Ongoing sync" not in blocks_text(status_blocks(syncing, None, NOW, ongoing=figures))
    assert "Ongoing sync" in blocks_text(status_blocks(CONNECTION, None, NOW, ongoing=figures))


@pytest.mark.parametrize(("seconds", "text"), [(-3, "0 s"), (45, "45 s"), (180, "3 min"), (7500, "2 h 05 min"),
                                               (3 * 86400 + 4 * 3600, "3 d 4 h")])
def test_span(seconds: float, text: str) -> None:
    assert span(seconds) == text


def test_switch_answers() -> None:
    off = OngoingSwitch(enabled=False, by="U0ADMIN", at=NOW)
    assert "is off" in switch_message(off).text and "enable" in switch_message(off).text
    assert "on again" in switch_message(off.model_copy(update={"enabled": True})).text
    assert unchanged_message(None).text == "Nothing changed. *Ongoing sync: on*"
    assert "disabled by <@U0ADMIN>" in unchanged_message(off).text
