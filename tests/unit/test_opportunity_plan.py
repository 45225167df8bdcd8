"""The plan rules for opportunities (one way, standard Marketo fields, links by GUID) and how their contact
roles are written."""

from __future__ import annotations

import pytest

from bot.marketo.models import Reason, RecordResult
from bot.models import AttributeMeta, Direction, Entity, EntityMetadata
from bot.sync.convert import convert_record
from bot.sync.links import LOOKUP_TARGET
from bot.sync.mapping import PlanError, build_plan, default_selection, selectable, standard_only_note
from bot.sync.opportunities import FORMATTED, PRIMARY_CONTACT, role_records, writer
from bot.views.fields import plan_summary_lines

GUID_ACCOUNT, GUID_OWNER, GUID_OPP = "a1a1a1a1-0000-0000-0000-000000000001", "b2b2b2b2-0000-0000-0000-000000000002", "o1"


def attr(logical: str, kind: str = "StringType", **kw) -> AttributeMeta:
    return AttributeMeta(**{"logical_name": logical, "display_name": logical.title(), "attribute_type": kind, **kw})


OPPORTUNITY = EntityMetadata(entity=Entity.opportunity, entity_set="opportunities", primary_id="opportunityid",
                             attributes=[
                                 attr("opportunityid", "UniqueidentifierType"), attr("name"),
                                 attr("estimatedvalue", "MoneyType"), attr("closeprobability", "IntegerType"),
                                 attr("estimatedclosedate", "DateTimeType", datetime_behavior="DateOnly"),
                                 attr("stepname"), attr("statecode", "StateType"),
                                 attr("parentaccountid", "LookupType"), attr("ownerid", "OwnerType"),
                                 attr("new_budget", "MoneyType", is_custom=True),
                                 attr("new_synctomkto", "BooleanType", is_custom=True, display_name="SyncToMkto"),
                             ])


def test_opportunities_sync_one_way_to_standard_fields_with_the_filter() -> None:
    plan = build_plan({Entity.opportunity: OPPORTUNITY}, {Entity.opportunity: ["estimatedvalue"]}, set(), {
        Entity.opportunity: 12})
    opportunity = plan.for_entity(Entity.opportunity)
    assert opportunity is not None and opportunity.id_field == "externalOpportunityId"
    names = {m.source: m.marketo_name for m in opportunity.mappings}
    assert names == {"estimatedvalue": "amount", "name": "name"}  # the name Marketo requires is always in
    assert opportunity.owner_lookup == "_ownerid_value"
    assert {m.direction for m in opportunity.mappings} == {Direction.to_marketo}
    assert opportunity.filter_attribute == "new_synctomkto"
    assert plan.fields_to_create == []  # Marketo cannot create opportunity fields


def test_a_non_standard_opportunity_field_is_refused_and_not_offered() -> None:
    with pytest.raises(PlanError, match="cannot create opportunity fields"):
        build_plan({Entity.opportunity: OPPORTUNITY}, {Entity.opportunity: ["new_budget"]}, set())
    assert "new_budget" not in {a.logical_name for a in selectable(OPPORTUNITY)}
    assert "statecode" not in default_selection(OPPORTUNITY)
    assert "one way" in (standard_only_note(Entity.opportunity) or "")


ACCOUNT = EntityMetadata(entity=Entity.account, entity_set="accounts", primary_id="accountid",
                         attributes=[attr("accountid", "UniqueidentifierType"), attr("name")])


def test_links_carry_the_guids_and_the_plan_counts_roles() -> None:
    """The company and owner links are the people's (`bot.sync.links`): GUIDs, the company only with accounts."""
    plan = build_plan({Entity.account: ACCOUNT, Entity.opportunity: OPPORTUNITY},
                      {Entity.account: ["name"], Entity.opportunity: default_selection(OPPORTUNITY)},
                      set(), {Entity.opportunity: 12})
    opportunity = plan.for_entity(Entity.opportunity)
    assert opportunity is not None
    record = {"opportunityid": GUID_OPP, "name": "Chairs", "estimatedvalue": 1604.47,
              "_parentaccountid_value": GUID_ACCOUNT, "_parentaccountid_value" + FORMATTED: "Contoso",
              "_parentaccountid_value" + LOOKUP_TARGET: "account",
              "_ownerid_value": GUID_OWNER, "_ownerid_value" + FORMATTED: "Olivia Owner",
              "_ownerid_value" + LOOKUP_TARGET: "systemuser"}
    converted = convert_record(record, opportunity)
    assert converted["externalOpportunityId"] == GUID_OPP
    assert (converted["externalCompanyId"], converted["externalSalesPersonId"]) == (GUID_ACCOUNT, GUID_OWNER)
    opportunity.role_count = 31
    line = next(line for line in plan_summary_lines(plan) if "Opportunities" in line)
    assert "Marketo opportunities (+ 31 contact roles)" in line and "12 records" in line


def test_role_records_follow_the_connections_to_synced_contacts() -> None:
    role = "_record2roleid_value" + FORMATTED
    connections = [
        {"_record1id_value": "o1", "_record2id_value": "c1", role: "Decision Maker"},
        {"_record1id_value": "o1", "_record2id_value": "c2", role: "Influencer"},
        {"_record1id_value": "o1", "_record2id_value": "c3", role: "Influencer"},  # no Marketo person
        {"_record1id_value": "o1", "_record2id_value": "c2", role: ""},  # no role name
        {"_record1id_value": "o2", "_record2id_value": "a9", role: "Partner",
         "_record2id_value@Microsoft.Dynamics.CRM.lookuplogicalname": "account"},
        {"_record1id_value": "o1", "_record2id_value": "c1", role: "Decision Maker"},  # the same role twice
    ]
    roles = role_records(connections, {"o1": "c1", "o2": None}, {"c1": 101, "c2": 102, "a9": 900})
    assert roles == [
        {"externalOpportunityId": "o1", "leadId": 101, "role": "Decision Maker", "isPrimary": True},
        {"externalOpportunityId": "o1", "leadId": 102, "role": "Influencer", "isPrimary": False},
    ]


class _Marketo:
    """Marketo as the writer sees it: opportunities written, persons found, the second role refused."""

    def __init__(self) -> None:
        self.roles: list[dict] = []

    def sync_opportunities(self, records: list[dict], action: str) -> list[RecordResult]:
        return [RecordResult(status="created") for _ in records]

    def get_leads(self, filter_type: str, values: list[str], fields: list[str]) -> list[dict]:
        return [{"id": 100 + int(v[1:]), "dynamicsContactId": v} for v in values]

    def sync_opportunity_roles(self, records: list[dict]) -> list[RecordResult]:
        self.roles += records
        return [RecordResult(status="created"), RecordResult(status="skipped", reasons=[
            Reason(code="1013", message="Lead not found")])][:len(records)]


class _Dataverse:
    def read_where_in(self, entity_set: str, column: str, values: list[str], select: list[str]) -> list[dict]:
        assert (entity_set, column) == ("connections", "_record1id_value")
        return [{"_record1id_value": v, "_record2id_value": f"c{n}", "_record2roleid_value" + FORMATTED: "Buyer"}
                for n, v in enumerate(values, start=1)]

    def read_by_ids(self, entity: Entity | str, ids: list[str], select: list[str]) -> list[dict]:
        return [{"opportunityid": i, "_parentcontactid_value": "c1"} for i in ids]


def test_a_refused_role_puts_its_opportunity_on_the_failure_list() -> None:
    marketo = _Marketo()
    results = writer(marketo, _Dataverse(), "createOrUpdate")([{"externalOpportunityId": "o1", "name": "A"},
                                                               {"externalOpportunityId": "o2", "name": "B"}])
    assert [r.status for r in results] == ["created", "skipped"]
    assert results[1].reasons[0].code == "1013" and "contact roles" in results[1].reasons[0].message
    assert [(r["leadId"], r["isPrimary"]) for r in marketo.roles] == [(101, True), (102, False)]
    # A backfill (update only) of added columns leaves the roles alone.
    marketo.roles.clear()
    assert [r.status for r in writer(marketo, _Dataverse(), "updateOnly")([{"externalOpportunityId": "o1"}])] == [
        "created"]
    assert marketo.roles == []


class _CountingDataverse(_Dataverse):
    """Counts the opportunities read again for their primary contact."""

    def __init__(self) -> None:
        self.reread: list[str] = []

    def read_by_ids(self, entity: Entity | str, ids: list[str], select: list[str]) -> list[dict]:
        self.reread += ids
        return super().read_by_ids(entity, ids, select)


class _Recording(_Marketo):
    def __init__(self) -> None:
        super().__init__()
        self.sent: list[dict] = []

    def sync_opportunities(self, records: list[dict], action: str) -> list[RecordResult]:
        self.sent += records
        return super().sync_opportunities(records, action)


def test_the_primary_contact_read_with_the_opportunities_rides_to_the_writer_and_never_to_marketo() -> None:
    with_primary = OPPORTUNITY.model_copy(update={"attributes": [*OPPORTUNITY.attributes,
                                                                 attr("parentcontactid", "LookupType")]})
    planned = build_plan({Entity.opportunity: with_primary}, {Entity.opportunity: ["name"]}, set())
    opportunity = planned.for_entity(Entity.opportunity)
    assert opportunity is not None and PRIMARY_CONTACT in opportunity.select
    assert build_plan({Entity.opportunity: OPPORTUNITY}, {Entity.opportunity: ["name"]}, set()).entities[
        0].primary_contact_lookup is None, "a table without the lookup: nothing to read"
    assert convert_record({"opportunityid": "o0", "name": "Z", PRIMARY_CONTACT: None}, opportunity)[
        PRIMARY_CONTACT] is None, "no primary contact, as read"
    assert PRIMARY_CONTACT not in convert_record({"opportunityid": "o0", "name": "Z"}, opportunity), "not read"
    carried = convert_record({"opportunityid": "o1", "name": "A", PRIMARY_CONTACT: "c1"}, opportunity)
    assert carried == {"externalOpportunityId": "o1", "name": "A", PRIMARY_CONTACT: "c1"}
    marketo, dataverse = _Recording(), _CountingDataverse()
    writer(marketo, dataverse, "createOrUpdate")([carried, {"externalOpportunityId": "o2", "name": "B"}])
    assert dataverse.reread == ["o2"], "only the record that does not carry it is read again"
    assert all(PRIMARY_CONTACT not in record for record in marketo.sent)
    # o1's role is c1's (its primary, as carried); o2's is c2's, not its primary (c1, as read again)
    assert [(r["externalOpportunityId"], r["leadId"], r["isPrimary"]) for r in marketo.roles] == [
        ("o1", 101, True), ("o2", 102, False)]
