import pytest

from bot.models import (
    AuditEntry,
    Connection,
    Entity,
    EntityPlan,
    EntityProgress,
    FieldPlan,
    FlowState,
    RunStatus,
    SyncRun,
)
from bot.views import ids
from bot.views.common import audit_blocks, error_modal, help_text, home_view, info_modal, status_blocks
from bot.views.kit import MAX_MESSAGE_BLOCKS
from tests.unit.test_views_kit import elements, text_of, view_dict

CONNECTION = Connection(
    team_id="T1", requester="U1", state=FlowState.syncing, dynamics_url="https://contoso.crm.dynamics.com",
    username="sync@contoso.com",
    plan=FieldPlan(entities=[EntityPlan(entity=Entity.lead, mappings=[], id_field="dynamicsLeadId",
                                        record_count=10)]),
)
RUN = SyncRun(id="run1", team_id="T1", connection_id=CONNECTION.id, requester="U1", status=RunStatus.running,
              started_at=1000, entities=[EntityProgress(entity=Entity.lead, estimated=10, created=5)])


def blocks_text(blocks) -> str:
    return text_of({"blocks": [b.to_dict() for b in blocks]})


def test_error_and_info_modals():
    data = view_dict(error_modal("Wrong password <for> sync@contoso.com."))
    assert "Wrong password &lt;for&gt;" in text_of(data) and "submit" not in data
    data = view_dict(info_modal("A title much longer than twenty-four characters", "*hello*"))
    assert len(data["title"]["text"]) == 24 and "*hello*" in text_of(data)


def test_help_text_lists_commands():
    text = help_text()
    for command in ["/connect-dynamics`", "/connect-dynamics status", "/connect-dynamics cancel",
                    "/connect-dynamics help"]:
        assert command in text


def test_status_without_connection():
    assert "not connected yet" in blocks_text(status_blocks(None, None))


@pytest.mark.parametrize("state", list(FlowState))
def test_status_every_state(state):
    blocks = status_blocks(CONNECTION.model_copy(update={"state": state}), RUN, now=1010)
    text = blocks_text(blocks)
    assert "https://contoso.crm.dynamics.com" in text and "*Plan*" in text
    assert len(blocks) <= MAX_MESSAGE_BLOCKS


def test_status_shows_run_progress_then_summary():
    running = blocks_text(status_blocks(CONNECTION, RUN, now=1010))
    assert "The initial sync is running" in running and "50% — 5 / 10" in running and "cancel" in running
    done = RUN.model_copy(update={"status": RunStatus.finished, "finished_at": 1020})
    assert "*Leads*: 5 created" in blocks_text(status_blocks(CONNECTION, done))


def test_audit_blocks():
    entries = [AuditEntry(at=1000 + i, actor="U1" if i % 2 else "system", action="approval_requested",
                          detail=f"detail <{i}>" if i % 3 else "") for i in range(200)]
    blocks = audit_blocks(entries)
    text = blocks_text(blocks)
    assert len(blocks) <= MAX_MESSAGE_BLOCKS
    assert "<@U1> · *approval requested* — detail &lt;1&gt;" in text and "· system ·" in text
    assert "160 more entries" in text
    assert "Nothing yet" in blocks_text(audit_blocks([]))


def test_home_view():
    data = view_dict(home_view(None, None))
    assert data["type"] == "home"
    connect, help_button = elements(data)
    assert connect["action_id"] == ids.HOME_CONNECT_ACTION and help_button["action_id"] == ids.HOME_HELP_ACTION
    data = view_dict(home_view(CONNECTION, RUN, now=1010))
    assert [e["action_id"] for e in elements(data)] == [ids.HOME_HELP_ACTION]  # syncing: nothing to start
    assert "50% — 5 / 10" in text_of(data)
    draft = CONNECTION.model_copy(update={"state": FlowState.fields})
    (cont, _) = elements(view_dict(home_view(draft, None)))
    assert cont["text"]["text"] == "Continue connecting" and cont["value"] == CONNECTION.id


def test_action_ids_are_unique_and_short():
    assert all(len(a) <= 255 for a in ids.ALL_ACTION_IDS)
    assert len(ids.ALL_ACTION_IDS) == 15 + len(Entity)  # the 15 named buttons and one per entity: none shared


def test_status_names_entities_synced_by_last_modified_time():
    assert "change tracking off" not in blocks_text(status_blocks(CONNECTION, RUN, now=1010))
    untracked = CONNECTION.model_copy(deep=True)
    untracked.plan.entities[0].change_tracking = False
    text = blocks_text(status_blocks(untracked, RUN, now=1010))
    assert "Leads: change tracking off: synced by last-modified time (deletes not detected)" in text
