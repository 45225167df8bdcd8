"""The pure rules of people's company links and records' owners (`bot.sync.links`)."""

from __future__ import annotations

from bot.dynamics.users import DynamicsUser
from bot.models import AttributeMeta, Entity, EntityMetadata, EntityPlan, FieldPlan
from bot.sync.convert import RecordConverter
from bot.sync.links import (
    COMPANY_ID,
    LOOKUP_TARGET,
    SALES_PERSON_ID,
    link_values,
    linked_person,
    plan_lookups,
    sales_person,
)
from bot.sync.mapping import build_plan
from bot.views.fields import plan_summary_lines

ACCOUNT_ID = "a0000000-0000-0000-0000-000000000001"
USER_ID = "b0000000-0000-0000-0000-000000000002"
TEAM_ID = "c0000000-0000-0000-0000-000000000003"


def attr(logical: str, kind: str = "StringType") -> AttributeMeta:
    return AttributeMeta(logical_name=logical, display_name=logical.title(), attribute_type=kind)


def meta(entity: Entity, *attrs: AttributeMeta) -> EntityMetadata:
    return EntityMetadata(entity=entity, entity_set=entity.entity_set, primary_id=entity.primary_id,
                          attributes=[attr(entity.primary_id, "UniqueidentifierType"), *attrs])


CONTACT = meta(Entity.contact, attr("emailaddress1"), attr("lastname"), attr("parentcustomerid", "CustomerType"),
               attr("ownerid", "OwnerType"))
LEAD = meta(Entity.lead, attr("emailaddress1"), attr("companyname"), attr("parentaccountid", "LookupType"),
            attr("ownerid", "OwnerType"))
ACCOUNT = meta(Entity.account, attr("name"), attr("ownerid", "OwnerType"))
METADATA = {Entity.lead: LEAD, Entity.contact: CONTACT, Entity.account: ACCOUNT}


def plan_of(entity: Entity, *, accounts: bool = True) -> EntityPlan:
    selected = {Entity.lead: ["emailaddress1", "companyname"], Entity.contact: ["emailaddress1", "lastname"],
                Entity.account: ["name"] if accounts else []}
    plan = build_plan(METADATA, selected, set()).for_entity(entity)
    assert plan is not None
    return plan


def lookup(name: str, value: str, target: str | None) -> dict[str, str]:
    return {name: value, **({name + LOOKUP_TARGET: target} if target else {})}


def test_people_read_their_account_only_when_accounts_sync():
    assert plan_lookups(CONTACT, accounts_planned=True) == ("_parentcustomerid_value", "_ownerid_value")
    assert plan_lookups(LEAD, accounts_planned=True) == ("_parentaccountid_value", "_ownerid_value")
    assert plan_lookups(CONTACT, accounts_planned=False) == (None, "_ownerid_value")
    assert plan_lookups(ACCOUNT, accounts_planned=True) == (None, "_ownerid_value")
    assert plan_lookups(meta(Entity.contact, attr("lastname")), accounts_planned=True) == (None, None)


def test_the_plan_reads_the_lookups():
    contact = plan_of(Entity.contact)
    assert {"_parentcustomerid_value", "_ownerid_value"} <= set(contact.select)
    assert plan_of(Entity.contact, accounts=False).company_lookup is None
    assert "_ownerid_value" in plan_of(Entity.account).select


def test_a_contact_links_to_its_parent_account_and_its_user_owner():
    plan = plan_of(Entity.contact)
    record = {**lookup("_parentcustomerid_value", ACCOUNT_ID, "account"), **lookup("_ownerid_value", USER_ID,
                                                                                     "systemuser")}
    assert link_values(record, plan) == {COMPANY_ID: ACCOUNT_ID, SALES_PERSON_ID: USER_ID}


def test_no_link_to_a_contact_parent_a_team_owner_or_an_unannotated_lookup():
    plan = plan_of(Entity.contact)
    assert link_values(lookup("_parentcustomerid_value", ACCOUNT_ID, "contact"), plan) == {}
    assert link_values(lookup("_parentcustomerid_value", ACCOUNT_ID, None), plan) == {}
    assert link_values(lookup("_ownerid_value", TEAM_ID, "team"), plan) == {}
    assert link_values({"_parentcustomerid_value": None}, plan) == {}


def test_an_account_carries_only_its_owner():
    plan = plan_of(Entity.account)
    record = {"accountid": ACCOUNT_ID, "name": "Acme", **lookup("_ownerid_value", USER_ID, "systemuser")}
    assert RecordConverter(plan)(record) == {COMPANY_ID: ACCOUNT_ID, "company": "Acme", SALES_PERSON_ID: USER_ID}


def test_the_converter_adds_the_links_and_never_sends_an_empty_one():
    plan = plan_of(Entity.lead)
    record = {"leadid": "l1", "companyname": "Own Co", **lookup("_parentaccountid_value", ACCOUNT_ID, "account")}
    assert RecordConverter(plan, send_nulls=True)(record) == {
        "dynamicsLeadId": "l1", "company": "Own Co", "email": None, COMPANY_ID: ACCOUNT_ID}
    assert COMPANY_ID not in RecordConverter(plan, send_nulls=True)({"leadid": "l2", "_parentaccountid_value": None})


def test_a_linked_person_leaves_the_company_fields_to_its_company():
    person = {"dynamicsLeadId": "l1", "email": "a@x.com", "company": "Own Co", "website": "x", COMPANY_ID: "a"}
    assert linked_person(person) == {"dynamicsLeadId": "l1", "email": "a@x.com", COMPANY_ID: "a"}


def test_sales_person_names():
    user = DynamicsUser(systemuserid=USER_ID, fullname="Ann de Vries", firstname="Ann", lastname="de Vries",
                        internalemailaddress="ann@contoso.com")
    assert sales_person(user) == {SALES_PERSON_ID: USER_ID, "email": "ann@contoso.com", "firstName": "Ann",
                                  "lastName": "de Vries"}
    assert sales_person(DynamicsUser(systemuserid=USER_ID, fullname="Olivia Owner")) == {
        SALES_PERSON_ID: USER_ID, "firstName": "Olivia", "lastName": "Owner"}
    assert sales_person(DynamicsUser(systemuserid=USER_ID, fullname="Cher")) == {SALES_PERSON_ID: USER_ID,
                                                                               "lastName": "Cher"}


def test_the_plan_says_how_people_and_owners_link():
    plan = build_plan(METADATA, {Entity.contact: ["lastname"], Entity.account: ["name"]}, set())
    lines = plan_summary_lines(FieldPlan(entities=plan.entities, owners=4))
    assert any("contacts are linked to their parent account" in line for line in lines)
    owners = next(line for line in lines if "*Owners*" in line)
    assert "4 Dynamics users → Marketo sales persons" in owners and "team" in owners
    without_accounts = build_plan(METADATA, {Entity.contact: ["lastname"]}, set())
    assert not any("*Companies*" in line for line in plan_summary_lines(without_accounts))
