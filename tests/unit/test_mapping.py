import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.models import AttributeMeta, Entity, EntityMetadata
from bot.sync.mapping import (
    DEFAULT_MAPPING,
    UNSUPPORTED_TYPES,
    PlanError,
    build_plan,
    default_selection,
    detect_sync_filter,
    is_syncable,
    marketo_field_name,
    marketo_type,
    passes_sync_filter,
    search_attributes,
    selectable,
)

LEGAL = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


def attr(logical: str, kind: str = "StringType", display: str | None = None, **kw) -> AttributeMeta:
    return AttributeMeta(logical_name=logical, display_name=display or logical.title(), attribute_type=kind, **kw)


def meta(entity: Entity, *attrs: AttributeMeta) -> EntityMetadata:
    return EntityMetadata(entity=entity, entity_set=entity.entity_set, primary_id=entity.primary_id,
                          attributes=list(attrs))


LEAD = meta(
    Entity.lead,
    attr("leadid", "UniqueidentifierType", "Lead"),
    attr("emailaddress1", "StringType", "Email", format="Email"),
    attr("firstname", display="First Name"),
    attr("lastname", display="Last Name"),
    attr("companyname", display="Company Name"),
    attr("donotbulkemail", "BooleanType", "Do not allow Bulk Emails"),
    attr("revenue", "MoneyType", "Annual Revenue"),
    attr("new_region", display="Region"),
    attr("new_notes", "MemoType", "Notes"),
    attr("new_synctomkto", "BooleanType", "SyncToMkto"),
    attr("new_birthday", "DateTimeType", "Birthday", datetime_behavior="DateOnly"),
    attr("new_image", "ImageType", "Picture"),
)
CONTACT = meta(
    Entity.contact,
    attr("contactid", "UniqueidentifierType"),
    attr("emailaddress1", format="Email"),
    attr("lastname"),
    attr("parentcustomerid", "CustomerType", "Company Name"),
    attr("new_region", display="Region"),
)
ACCOUNT = meta(
    Entity.account,
    attr("accountid", "UniqueidentifierType"),
    attr("name", display="Account Name"),
    attr("industrycode", "PicklistType", "Industry"),
    attr("new_tier", display="Tier"),
)
ALL = {Entity.lead: LEAD, Entity.contact: CONTACT, Entity.account: ACCOUNT}


def test_default_mapping_is_marketos():
    lead = DEFAULT_MAPPING[Entity.lead]
    assert lead["emailaddress1"] == "email" and lead["companyname"] == "company"
    assert lead["donotbulkemail"] == "unsubscribed" and lead["leadsourcecode"] == "leadSource"
    assert "companyname" not in DEFAULT_MAPPING[Entity.contact]
    assert DEFAULT_MAPPING[Entity.contact]["parentcustomerid"] == "company"
    account = DEFAULT_MAPPING[Entity.account]
    assert account["name"] == "company" and account["telephone1"] == "mainPhone"
    assert account["address1_city"] == "billingCity" and account["industrycode"] == "industry"


def test_field_name_example_and_legality():
    assert marketo_field_name(Entity.lead, "new_region", set()) == "dynLeadNewRegion"
    assert marketo_field_name(Entity.contact, "cr5f_x__y", set()) == "dynContactCr5fXY"
    long_name = "new_" + "verylongattribute" * 5
    name = marketo_field_name(Entity.lead, long_name, set())
    assert len(name) <= 50 and LEGAL.match(name)
    assert name == marketo_field_name(Entity.lead, long_name, set())  # stable
    assert name != marketo_field_name(Entity.lead, long_name + "2", set())


def test_field_name_collision_gets_stable_suffix():
    taken = {"DYNLEADNEWREGION"}
    first = marketo_field_name(Entity.lead, "new_region", taken)
    assert first.lower() != "dynleadnewregion" and first.startswith("dynLeadNewRegion_")
    assert first == marketo_field_name(Entity.lead, "new_region", set(taken))
    second = marketo_field_name(Entity.lead, "new_region", taken | {first})
    assert second not in {first} and LEGAL.match(second)
    assert taken == {"DYNLEADNEWREGION"}  # not modified


@given(st.text(min_size=1, max_size=120), st.sampled_from(list(Entity)))
def test_field_names_always_legal(logical, entity):
    name = marketo_field_name(entity, logical, {"dynLeadX"})
    assert LEGAL.match(name) and len(name) <= 50


@pytest.mark.parametrize(("kind", "extra", "expected"), [
    ("StringType", {}, "string"),
    ("StringType", {"format": "Email"}, "email"),
    ("StringType", {"format": "Phone"}, "phone"),
    ("StringType", {"format": "Url"}, "url"),
    ("StringType", {"format": "TextArea"}, "string"),
    ("MemoType", {}, "string"),
    ("IntegerType", {}, "integer"),
    ("BigIntType", {}, "string"),
    ("DecimalType", {}, "float"),
    ("DoubleType", {}, "float"),
    ("MoneyType", {}, "currency"),
    ("DateTimeType", {"datetime_behavior": "UserLocal"}, "datetime"),
    ("DateTimeType", {"datetime_behavior": "DateOnly"}, "date"),
    ("BooleanType", {}, "boolean"),
    ("PicklistType", {}, "string"),
    ("StateType", {}, "string"),
    ("StatusType", {}, "string"),
    ("MultiSelectPicklistType", {}, "string"),
    ("LookupType", {}, "string"),
    ("OwnerType", {}, "string"),
    ("CustomerType", {}, "string"),
    ("UniqueidentifierType", {}, "string"),
])
def test_marketo_type(kind, extra, expected):
    a = attr("x", kind, **extra)
    assert is_syncable(a)
    assert marketo_type(a) == expected


@pytest.mark.parametrize("kind", sorted(UNSUPPORTED_TYPES) + ["SomethingNewType"])
def test_unsupported_types_not_selectable(kind):
    a = attr("x", kind)
    assert not is_syncable(a)
    with pytest.raises(PlanError):
        marketo_type(a)


def test_default_selection_only_existing_defaults():
    assert default_selection(LEAD) == ["emailaddress1", "firstname", "lastname", "companyname",
                                       "donotbulkemail", "revenue"]
    assert default_selection(CONTACT) == ["emailaddress1", "lastname", "parentcustomerid"]


def test_selectable_accounts_only_standard():
    assert {a.logical_name for a in selectable(ACCOUNT)} == {"name", "industrycode"}
    assert "new_image" not in {a.logical_name for a in selectable(LEAD)}
    assert "new_region" in {a.logical_name for a in selectable(LEAD)}


def test_sync_filter_detected():
    status = detect_sync_filter(LEAD)
    assert status.applies and status.display_name == "SyncToMkto" and status.lookalike is None
    assert "No are left out" in status.message


@pytest.mark.parametrize("lookalike", [
    attr("cr5f_synctomkto", "BooleanType", "SyncToMkto"),
    attr("new_flag", "BooleanType", "Sync to Marketo"),
    attr("new_flag", "BooleanType", "sync TO mkto"),
    attr("new_synctomkto", "StringType", "SyncToMkto"),
])
def test_sync_filter_lookalikes_not_used(lookalike):
    status = detect_sync_filter(meta(Entity.lead, attr("leadid", "UniqueidentifierType"), lookalike))
    assert not status.applies
    assert status.lookalike == lookalike
    assert "new_synctomkto" in status.message and "Two Options" in status.message


def test_no_sync_filter():
    status = detect_sync_filter(CONTACT)
    assert not status.applies and status.lookalike is None and "every record syncs" in status.message


@pytest.mark.parametrize(("record", "expected"), [
    ({"new_synctomkto": False}, False),
    ({"new_synctomkto": True}, True),
    ({"new_synctomkto": None}, True),
    ({}, True),
])
def test_passes_sync_filter(record, expected):
    assert passes_sync_filter(record, "new_synctomkto") is expected
    assert passes_sync_filter(record, None) is True


def test_search_ranking():
    attrs = [
        attr("new_regionname", display="Sales Region Name"),
        attr("region", display="Territory"),
        attr("new_subregion", display="Sub area"),
        attr("new_region", display="Region"),
        attr("firstname", display="First Name"),
    ]
    names = [a.logical_name for a in search_attributes(attrs, "REGION")]
    # exact (display "Region" / logical "region"), prefix, word-prefix, substring
    assert names == ["new_region", "region", "new_regionname", "new_subregion"]
    assert [a.logical_name for a in search_attributes(attrs, "name")] == ["firstname", "new_regionname"]


def test_search_empty_query_selected_then_defaults_then_alpha():
    attrs = [attr("zeta"), attr("alpha"), attr("lastname"), attr("firstname"), attr("beta")]
    names = [a.logical_name for a in search_attributes(attrs, " ", selected=["beta", "zeta"], entity=Entity.lead)]
    assert names == ["beta", "zeta", "firstname", "lastname", "alpha"]


def test_search_limit():
    attrs = [attr(f"new_field{i:03}") for i in range(500)]
    assert len(search_attributes(attrs, "")) == 100
    assert len(search_attributes(attrs, "new", limit=30)) == 30


def test_build_plan():
    selected = {
        Entity.lead: ["firstname", "new_region", "new_notes", "new_birthday", "donotbulkemail"],
        Entity.contact: ["lastname", "new_region"],
        Entity.account: ["name", "industrycode"],
    }
    plan = build_plan(ALL, selected, existing_marketo_fields={"dynamicsleadid"}, counts={Entity.lead: 7})
    lead = plan.for_entity(Entity.lead)
    by_source = {m.source: m for m in lead.mappings}
    assert set(by_source) == {"emailaddress1", "firstname", "new_region", "new_notes", "new_birthday",
                              "donotbulkemail"}  # email always mapped
    assert by_source["emailaddress1"].marketo_name == "email" and by_source["emailaddress1"].standard
    assert by_source["donotbulkemail"].marketo_name == "unsubscribed"
    assert by_source["new_region"].marketo_name == "dynLeadNewRegion" and not by_source["new_region"].standard
    assert by_source["new_birthday"].marketo_type == "date"
    assert lead.filter_attribute == "new_synctomkto" and lead.record_count == 7
    assert lead.id_field == "dynamicsleadid"  # existing field reused under Marketo's spelling
    contact = plan.for_entity(Entity.contact)
    assert contact.filter_attribute is None and contact.id_field == "dynamicsContactId"
    assert {m.marketo_name for m in contact.mappings} == {"email", "lastName", "dynContactNewRegion"}
    account = plan.for_entity(Entity.account)
    assert account.id_field == "externalCompanyId"
    assert {m.marketo_name for m in account.mappings} == {"company", "industry"}
    created = {f.name: f for f in plan.fields_to_create}
    assert set(created) == {"dynamicsContactId", "dynLeadNewRegion", "dynLeadNewNotes", "dynLeadNewBirthday",
                            "dynContactNewRegion", "dynamicsDeleted", "dynamicsAccountDeleted"}
    assert created["dynamicsDeleted"].data_type == "boolean"  # for the incremental sync's deletes, approved now
    assert created["dynamicsAccountDeleted"].data_type == "boolean"  # an account delete is shown on its people
    assert created["dynLeadNewRegion"].description == "from Dynamics lead.new_region"
    assert created["dynLeadNewNotes"].data_type == "string"
    assert created["dynamicsContactId"].data_type == "string"
    displays = [f.display_name for f in plan.fields_to_create]
    assert len(set(displays)) == len(displays) and all(len(d) <= 50 for d in displays)
    assert plan.fields_existing == ["dynamicsleadid"]
    assert "new_synctomkto" in lead.select and lead.select[0] == "leadid"


def test_build_plan_is_stable_and_skips_existing():
    selected = {Entity.lead: ["new_region", "new_notes"]}
    first = build_plan(ALL, selected, set())
    assert first == build_plan(ALL, {Entity.lead: ["new_notes", "new_region"], Entity.contact: []}, set())
    again = build_plan(ALL, selected, {f.name for f in first.fields_to_create})
    assert again.fields_to_create == []
    assert set(again.fields_existing) == {f.name for f in first.fields_to_create}
    assert [e.entity for e in first.entities] == [Entity.lead]


def test_build_plan_lookup_reads_value_property():
    plan = build_plan(ALL, {Entity.contact: ["parentcustomerid"]}, set())
    mapping = next(m for m in plan.entities[0].mappings if m.source == "parentcustomerid")
    assert mapping.read_name == "_parentcustomerid_value" and mapping.marketo_name == "company"


@pytest.mark.parametrize(("entity", "name", "words"), [
    (Entity.account, "new_tier", "standard company fields"),
    (Entity.lead, "new_image", "cannot be synced"),
    (Entity.lead, "new_gone", "no longer"),
])
def test_build_plan_refuses(entity, name, words):
    with pytest.raises(PlanError) as info:
        build_plan(ALL, {entity: [name]}, set())
    assert words in info.value.user_message
