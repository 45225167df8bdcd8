"""Directions in the plan: the admin's choices, the fields one way by necessity (and why), and how
the Directions modal, the plan and the approval show them within Slack's limits."""

import json

import pytest

from bot.models import (
    Approval,
    AttributeMeta,
    Connection,
    Direction,
    Entity,
    EntityMetadata,
    FieldPlan,
    Side,
)
from bot.sync.convert import RecordConverter
from bot.sync.directions import DirectionChoices, DirectionError, one_way_reason, plan_choices, settle
from bot.sync.mapping import build_plan
from bot.views import ids
from bot.views.approval import approval_request_message
from bot.views.direction_text import direction_lines
from bot.views.directions import EntityDirectionsView, directions_modal
from bot.views.fields import plan_modal
from bot.views.kit import MAX_MESSAGE_BLOCKS, MAX_OPTION_TEXT, MAX_OPTIONS, MAX_TITLE


def attr(logical: str, kind: str = "StringType", **kw) -> AttributeMeta:
    return AttributeMeta(logical_name=logical, display_name=logical.title(), attribute_type=kind, **kw)


def meta(entity: Entity, *attrs: AttributeMeta) -> EntityMetadata:
    return EntityMetadata(entity=entity, entity_set=entity.entity_set, primary_id=entity.primary_id,
                          attributes=list(attrs))


LEAD = meta(
    Entity.lead,
    attr("emailaddress1", format="Email"),
    attr("firstname"),
    attr("jobtitle"),
    attr("fullname", valid_for_update=False),
    attr("new_daysopen", "IntegerType", valid_for_update=False, source_type=1),
    attr("new_synctomkto", "BooleanType"),
    attr("ownerid", "OwnerType"),
)
CONTACT = meta(Entity.contact, attr("emailaddress1", format="Email"), attr("firstname"),
               attr("new_opendeals", "IntegerType", valid_for_update=False, source_type=2),
               attr("parentcustomerid", "CustomerType"))
ACCOUNT = meta(Entity.account, attr("name"), attr("websiteurl", format="Url"))
METADATA = {Entity.lead: LEAD, Entity.contact: CONTACT, Entity.account: ACCOUNT}
ALL = {e: [a.logical_name for a in m.attributes] for e, m in METADATA.items()}


def by_source(plan: FieldPlan, entity: Entity) -> dict:
    entity_plan = plan.for_entity(entity)
    assert entity_plan is not None
    return {m.source: m for m in entity_plan.mappings}


@pytest.mark.parametrize(("entity", "field", "words"), [
    (Entity.lead, attr("fullname", valid_for_update=False), "read-only"),
    (Entity.lead, attr("new_daysopen", "IntegerType", valid_for_update=False, source_type=1), "calculated"),
    (Entity.contact, attr("new_opendeals", "IntegerType", valid_for_update=False, source_type=2), "rollup"),
    (Entity.lead, attr("leadid", "UniqueidentifierType"), "Dynamics id"),
    (Entity.contact, attr("new_synctomkto", "BooleanType"), "sync filter"),
    (Entity.lead, attr("ownerid", "OwnerType"), "lookup"),
    (Entity.contact, attr("parentcustomerid", "CustomerType"), "lookup"),
    (Entity.account, attr("name"), "one way"),
])
def test_fields_marketo_cannot_write_say_why(entity, field, words):
    reason = one_way_reason(entity, field)
    assert reason is not None and words in reason


def test_a_plain_person_field_can_be_written_by_marketo():
    assert one_way_reason(Entity.lead, attr("firstname")) is None
    assert one_way_reason(Entity.contact, attr("jobtitle", source_type=0)) is None


def test_default_plan_syncs_person_fields_both_ways_and_the_rest_one_way_with_reasons():
    plan = build_plan(METADATA, ALL, set())
    lead = by_source(plan, Entity.lead)
    assert lead["firstname"].direction == Direction.both and lead["firstname"].one_way_reason is None
    assert lead["fullname"].direction == Direction.to_marketo and "read-only" in lead["fullname"].one_way_reason
    assert "calculated" in lead["new_daysopen"].one_way_reason
    assert lead["new_synctomkto"].direction == Direction.to_marketo
    assert lead["ownerid"].direction == Direction.to_marketo
    contact = by_source(plan, Entity.contact)
    assert "rollup" in contact["new_opendeals"].one_way_reason
    assert all(m.direction == Direction.to_marketo and m.one_way_reason
               for m in by_source(plan, Entity.account).values())


def test_the_admins_directions_and_winners_go_into_the_plan():
    plan = build_plan(METADATA, ALL, set(),
                      directions={"lead": {"jobtitle": Direction.to_marketo, "firstname": Direction.to_dynamics}},
                      winners={"lead": {"emailaddress1": Side.dynamics, "jobtitle": Side.dynamics},
                               "contact": {"firstname": Side.marketo}})
    lead = by_source(plan, Entity.lead)
    assert lead["jobtitle"].direction == Direction.to_marketo and lead["jobtitle"].winner is None
    assert lead["firstname"].direction == Direction.to_dynamics and lead["firstname"].one_way_reason is None
    assert lead["emailaddress1"].direction == Direction.both and lead["emailaddress1"].winner == Side.dynamics
    assert by_source(plan, Entity.contact)["firstname"].winner == Side.marketo


@pytest.mark.parametrize("field", ["fullname", "new_daysopen", "new_synctomkto", "ownerid"])
def test_marketo_to_dynamics_is_refused_for_a_field_marketo_cannot_write(field):
    with pytest.raises(DirectionError, match="cannot sync Marketo → Dynamics"):
        build_plan(METADATA, ALL, set(), directions={"lead": {field: Direction.to_dynamics}})


def test_a_field_cannot_be_chosen_one_way_in_both_directions():
    with pytest.raises(DirectionError, match="jobtitle"):
        settle(Entity.lead, DirectionChoices(to_marketo=["jobtitle"], to_dynamics=["jobtitle"]))
    directions, winners = settle(Entity.contact, DirectionChoices(to_dynamics=["firstname"], other_wins=["jobtitle"]))
    assert directions == {"firstname": Direction.to_dynamics} and winners == {"jobtitle": Side.marketo}
    assert settle(Entity.lead, DirectionChoices(other_wins=["jobtitle"]))[1] == {"jobtitle": Side.dynamics}


def test_a_plans_choices_rebuild_the_same_plan():
    directions = {"lead": {"jobtitle": Direction.to_marketo}, "contact": {"firstname": Direction.to_dynamics}}
    winners = {"lead": {"firstname": Side.dynamics}, "contact": {}}
    plan = build_plan(METADATA, ALL, set(), directions=directions, winners=winners)
    again = build_plan(METADATA, ALL, set(), directions=plan_choices(plan)[0], winners=plan_choices(plan)[1])
    assert again == plan
    assert plan_choices(plan)[0]["lead"] == {"jobtitle": Direction.to_marketo}


def many(entity: Entity, n: int) -> list[AttributeMeta]:
    fields = [AttributeMeta(logical_name=f"new_field{i:03d}", display_name="A very long display name " * 4,
                            attribute_type="StringType") for i in range(n)]
    return fields + [attr("fullname", valid_for_update=False), attr("new_calc", "IntegerType", source_type=1)]


def test_directions_modal_stays_within_slacks_limits_with_a_hundred_fields_per_entity():
    views = [EntityDirectionsView(entity=Entity.lead, fields=many(Entity.lead, 100),
                                  directions={"new_field001": Direction.to_marketo}, winners={"new_field002": Side.dynamics}),
             EntityDirectionsView(entity=Entity.contact, fields=many(Entity.contact, 100)),
             EntityDirectionsView(entity=Entity.account, fields=[attr("name")])]
    data = directions_modal("c42", views).to_dict()
    assert data["callback_id"] == ids.DIRECTIONS_CALLBACK and len(data["title"]["text"]) <= MAX_TITLE
    assert len(data["blocks"]) <= MAX_MESSAGE_BLOCKS
    inputs = {b["block_id"]: b for b in data["blocks"] if b["type"] == "input"}
    assert len(inputs) == 6  # three lists per two-way entity, none for accounts
    for block in inputs.values():
        options = block["element"]["options"]
        assert 0 < len(options) <= MAX_OPTIONS and all(len(o["text"]["text"]) <= MAX_OPTION_TEXT for o in options)
        assert {"fullname", "new_calc"}.isdisjoint(o["value"] for o in options), "one way by necessity: not offered"
    lead_one_way = inputs[ids.direction_block_id(Entity.lead, "to_marketo")]["element"]
    assert [o["value"] for o in lead_one_way["initial_options"]] == ["new_field001"]
    lead_winner = inputs[ids.direction_block_id(Entity.lead, "winner")]
    assert lead_winner["label"]["text"] == "Dynamics wins collisions on"
    assert [o["value"] for o in lead_winner["element"]["initial_options"]] == ["new_field002"]
    assert inputs[ids.direction_block_id(Entity.contact, "winner")]["label"]["text"] == "Marketo wins collisions on"
    dumped = json.dumps(data, ensure_ascii=False)
    assert "`new_calc` (calculated in Dynamics)" in dumped and "`fullname` (read-only in Dynamics)" in dumped
    assert "Accounts sync one way" in dumped


def test_directions_modal_without_a_field_marketo_can_write_offers_no_list():
    view = EntityDirectionsView(entity=Entity.lead, fields=[attr("fullname", valid_for_update=False)])
    data = directions_modal("c42", [view]).to_dict()
    assert not [b for b in data["blocks"] if b["type"] == "input"]
    assert "read-only in Dynamics" in json.dumps(data)


def big_plan() -> FieldPlan:
    fields = {e: many(e, 100) for e in (Entity.lead, Entity.contact)}
    metadata = {e: meta(e, *fields[e]) for e in fields}
    selected = {e: [a.logical_name for a in fields[e]] for e in fields}
    one_way = {e.value: {a.logical_name: Direction.to_marketo for a in fields[e][30:90]} for e in fields}
    return build_plan(metadata, selected, set(), directions=one_way,
                      winners={"lead": {a.logical_name: Side.dynamics for a in fields[Entity.lead][:20]}})


def test_plan_lines_summarise_each_entity_and_list_what_differs():
    lines = direction_lines(build_plan(METADATA, ALL, set(), directions={"lead": {"jobtitle": Direction.to_marketo}},
                                       winners={"lead": {"firstname": Side.dynamics}}))
    text = "\n".join(lines)
    assert "*Leads*: 2 ⇄ both ways, 5 → Marketo; collisions: Marketo wins" in text
    assert "`jobtitle` → Marketo" in text and "`firstname` ⇄ both ways, Dynamics wins" in text
    assert "`fullname` → Marketo (read-only in Dynamics)" in text
    assert text.index("`jobtitle`") < text.index("`fullname`"), "the admin's choices come first"
    assert "`emailaddress1`" not in text, "a field syncing both ways by the rule is only counted"
    assert "*Accounts*: every field → Marketo" in text
    long = direction_lines(big_plan(), limit=10)
    assert sum("more fields" in line for line in long) == 2 and len(long) == 2 * (1 + 10 + 1)


def test_plan_modal_and_approval_show_directions_within_50_blocks():
    plan = big_plan()
    modal = json.dumps(plan_modal("c42", plan).to_dict(), ensure_ascii=False)
    assert "*Directions*" in modal and "⇄ both ways, Dynamics wins" in modal
    connection = Connection(team_id="T1", requester="U1REQ", dynamics_url="https://contoso.crm.dynamics.com")
    approval = Approval(team_id="T1", connection_id=connection.id, requester="U1REQ", expires_at=1_800_000_000)
    message = approval_request_message(approval, connection, plan)
    blocks = [b.to_dict() for b in message.blocks]
    assert len(blocks) <= MAX_MESSAGE_BLOCKS
    assert blocks[-1]["block_id"] == ids.APPROVAL_ACTIONS_BLOCK, "the buttons are never cut"
    text = json.dumps(blocks, ensure_ascii=False)
    assert "*Leads*: 40 ⇄ both ways, 62 → Marketo" in text and "more fields" in text
    assert len(text) < 13_000


def test_a_field_synced_marketo_to_dynamics_only_is_never_written_to_marketo():
    plan = build_plan(METADATA, ALL, set(), directions={"lead": {"jobtitle": Direction.to_dynamics}})
    lead = plan.for_entity(Entity.lead)
    assert lead is not None
    out = RecordConverter(lead, send_nulls=True)({"leadid": "g1", "firstname": "Ann", "jobtitle": "CEO"})
    assert out["firstName"] == "Ann" and "title" not in out
