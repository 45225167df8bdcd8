import json

from bot.models import AttributeMeta, Entity, EntityPlan, FieldMapping, FieldPlan, MarketoField
from bot.sync.mapping import SyncFilterStatus
from bot.views import ids
from bot.views.fields import EntityFieldsView, fields_modal, option_label, options_for, plan_modal
from tests.unit.test_views_kit import blocks_of, elements, text_of, view_dict


def attr(logical: str, display: str | None = None, kind: str = "StringType") -> AttributeMeta:
    return AttributeMeta(logical_name=logical, display_name=display or logical, attribute_type=kind)


MANY = [attr(f"new_field{i:03}", f"Field {i:03}") for i in range(500)]


def test_options_capped_and_labelled():
    options = [o.to_dict() for o in options_for(MANY, "", [])]
    assert len(options) == 100
    assert options[0] == {"text": {"type": "plain_text", "text": "Field 000 (new_field000)"},
                          "value": "new_field000"}
    assert len(options_for(MANY, "field", [])) == 100
    assert [o.value for o in options_for(MANY, "new_field42", [])] == [f"new_field42{i}" for i in range(10)]


def test_option_label_keeps_logical_name():
    long = attr("new_region", "A very long display name " * 5)
    label = option_label(long)
    assert len(label) <= 75 and label.endswith("(new_region)") and "…" in label
    huge = attr("new_" + "x" * 100)
    assert len(option_label(huge)) == 75


def test_options_exclude_unsyncable_and_non_standard_account_fields():
    attrs = [attr("name", "Account Name"), attr("new_tier", "Tier"), attr("new_pic", "Picture", "ImageType")]
    assert [o.value for o in options_for(attrs, "", [])] == ["name", "new_tier"]
    assert [o.value for o in options_for(attrs, "", [], entity=Entity.account)] == ["name"]


def test_options_empty_query_selected_first():
    values = [o.value for o in options_for(MANY, "", ["new_field300", "new_field007"], entity=Entity.lead)]
    assert values[:3] == ["new_field300", "new_field007", "new_field000"]


def entity_view(entity: Entity, selected: int, applies: bool = False) -> EntityFieldsView:
    status = SyncFilterStatus(applies=applies, display_name="SyncToMkto" if applies else None,
                              message="Sync filter detected" if applies else "No sync filter")
    return EntityFieldsView(entity=entity, selected=MANY[:selected], filter_status=status, attribute_count=500)


def test_fields_modal():
    per_entity = [entity_view(Entity.lead, 3, applies=True), entity_view(Entity.contact, 0),
                  entity_view(Entity.account, 2), entity_view(Entity.opportunity, 1)]
    data = view_dict(fields_modal("c42", per_entity))
    assert data["callback_id"] == ids.FIELDS_CALLBACK and data["submit"]["text"] == "Next"
    assert json.loads(data["private_metadata"]) == {"connection_id": "c42"}
    inputs = {b["block_id"]: b["element"] for b in blocks_of(data, "input")}
    assert list(inputs) == [ids.fields_block_id(e) for e in Entity]
    lead = inputs[ids.fields_block_id(Entity.lead)]
    assert lead["type"] == "multi_external_select" and lead["min_query_length"] == 0
    assert lead["action_id"] == ids.fields_action_id(Entity.lead)
    assert [o["value"] for o in lead["initial_options"]] == ["new_field000", "new_field001", "new_field002"]
    assert "initial_options" not in inputs[ids.fields_block_id(Entity.contact)]
    dumped = text_of(data)
    assert "Sync filter detected" in dumped and "No sync filter" in dumped
    assert "standard company fields" in dumped
    directions, refresh = elements(data)
    assert refresh["action_id"] == ids.REFRESH_FIELDS_ACTION and refresh["value"] == "c42"
    assert directions["action_id"] == ids.DIRECTIONS_ACTION and directions["value"] == "c42"


def test_fields_modal_refreshing_and_large_selection():
    data = view_dict(fields_modal("c42", [entity_view(Entity.lead, 150)], refreshing=True))
    assert not elements(data) and "Refreshing fields" in text_of(data)
    (select,) = [b["element"] for b in blocks_of(data, "input")]
    assert len(select["initial_options"]) == 100
    assert "50 of the saved selection are not shown" in text_of(data)


def test_action_ids_round_trip():
    for entity in Entity:
        assert ids.entity_of_fields_action(ids.fields_action_id(entity)) is entity
    assert ids.entity_of_fields_action(ids.APPROVE_ACTION) is None


def plan(n_create: int) -> FieldPlan:
    mapping = FieldMapping(source="new_region", read_name="new_region", attribute_type="StringType",
                           marketo_name="dynLeadNewRegion", marketo_type="string", standard=False)
    return FieldPlan(
        entities=[EntityPlan(entity=Entity.lead, mappings=[mapping], id_field="dynamicsLeadId",
                             filter_attribute="new_synctomkto"),
                  EntityPlan(entity=Entity.account, mappings=[], id_field="externalCompanyId")],
        fields_to_create=[MarketoField(name=f"dynLeadF{i}", display_name=f"Dyn Lead F{i}", data_type="string")
                          for i in range(n_create)],
        fields_existing=["dynamicsLeadId"],
    )


def test_plan_modal():
    data = view_dict(plan_modal("c42", plan(3), {Entity.lead: 12345, Entity.account: 7}))
    assert data["callback_id"] == ids.PLAN_CALLBACK and data["submit"]["text"] == "Next"
    dumped = text_of(data)
    assert "`dynLeadF0` (string)" in dumped and "`dynLeadF2` (string)" in dumped
    assert "Marketo fields to create (3)" in dumped and "Already in Marketo (1)" in dumped
    assert "12,345 records" in dumped and "7 records" in dumped
    assert "filter `new_synctomkto` applied" in dumped
    assert "cannot be deleted" in dumped and "standard company fields" in dumped
    assert "the people who worked there get `dynamicsAccountDeleted` = true" in dumped  # how account deletes show
    assert "merged in Marketo" in dumped and "qualified" not in dumped  # no contacts: no qualified leads


def test_plan_modal_says_a_qualified_lead_stays_one_person():
    both = plan(0)
    both.entities.insert(1, EntityPlan(entity=Entity.contact, mappings=[], id_field="dynamicsContactId"))
    dumped = text_of(view_dict(plan_modal("c42", both)))
    assert "A lead qualified into a contact stays *one Marketo person*" in dumped
    only_accounts = FieldPlan(entities=[both.entities[2]])
    assert "One person per human" not in text_of(view_dict(plan_modal("c42", only_accounts)))


def test_plan_modal_huge_plan_stays_in_limits():
    data = view_dict(plan_modal("c42", plan(2000)))
    dumped = text_of(data)
    assert "Marketo fields to create (2000)" in dumped and "1800 more fields" in dumped
    assert all(len(b["text"]["text"]) <= 3000 for b in blocks_of(data, "section"))


def test_plan_modal_says_per_entity_whether_change_tracking_is_on():
    untracked = plan(0)
    untracked.entities[1].change_tracking = False
    dumped = text_of(view_dict(plan_modal("c42", untracked)))
    assert "*Leads*: change tracking is on" in dumped
    assert "*Accounts*: change tracking is off in Dynamics" in dumped
    assert "Power Apps → Tables → Account → Properties → Advanced options → tick “Track changes”" in dumped
    assert "last-modified time (`modifiedon`)" in dumped and "deleted in Dynamics are not detected" in dumped
    assert "change tracking is off" not in text_of(view_dict(plan_modal("c42", plan(0))))
