"""The emulators' custom tables and custom objects, seen over loopback: Dataverse serves `new_project`
(lookup to contact) and `new_projectnote` (lookup to project) with metadata and change tracking; Marketo's
custom-object schema API keeps a type a draft until approved and enforces §B3's limits."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import closing
from typing import Any

import httpx
import pytest

from bot.dynamics.client import DataverseClient
from sandbox.dynamics import DynamicsEmulator
from sandbox.marketo import MarketoEmulator
from tests.support.marketo import signed_in


@pytest.fixture
def emulator(start_dynamics: Callable[..., DynamicsEmulator]) -> DynamicsEmulator:
    return start_dynamics(records={"contact": 4, "new_project": 6, "new_projectnote": 5})


def _json(client: DataverseClient, path: str, params: dict[str, str] | None = None,
          prefer: list[str] | None = None) -> dict[str, Any]:
    return client.get(client.url(path, params), prefer=prefer).json()


def test_dataverse_lists_custom_tables_with_their_lookups(client: DataverseClient) -> None:
    custom = _json(client, "EntityDefinitions", {"$select": "LogicalName,EntitySetName,PrimaryIdAttribute",
                                                 "$filter": "IsCustomEntity eq true"})["value"]
    assert {row["LogicalName"]: row["EntitySetName"] for row in custom} == {
        "new_project": "new_projects", "new_projectnote": "new_projectnotes"}
    relations = _json(client, "EntityDefinitions(LogicalName='new_projectnote')/ManyToOneRelationships")["value"]
    assert [(r["ReferencingAttribute"], r["ReferencedEntity"]) for r in relations] == [
        ("new_projectid", "new_project")]
    attributes = _json(client, "EntityDefinitions(LogicalName='new_project')/Attributes",
                       {"$select": "LogicalName,AttributeType,IsCustomAttribute"})["value"]
    types = {a["LogicalName"]: a["AttributeType"] for a in attributes}
    assert types["new_contactid"] == "Lookup" and types["new_budget"] == "Money"
    assert _json(client, "EntityDefinitions(LogicalName='lead')")["IsCustomEntity"] is False


def test_dataverse_reads_custom_records_and_tracks_their_changes(emulator: DynamicsEmulator,
                                                                 client: DataverseClient) -> None:
    first = _json(client, "new_projects", {"$select": "new_name,_new_contactid_value"},
                  prefer=["odata.track-changes", 'odata.include-annotations="*"'])
    rows = first["value"]
    assert len(rows) == 6
    contacts = {emulator.record_id("contact", i) for i in range(4)}
    assert all(r["_new_contactid_value"] in contacts for r in rows)
    assert rows[0]["_new_contactid_value@Microsoft.Dynamics.CRM.lookuplogicalname"] == "contact"
    emulator.update_record("new_project", 2, new_name="Renamed")
    changes = client.get(first["@odata.deltaLink"], prefer=["odata.track-changes"]).json()["value"]
    assert [(c["new_projectid"], c["new_name"]) for c in changes] == [(emulator.record_id("new_project", 2),
                                                                       "Renamed")]


@pytest.fixture
def marketo(start_marketo: Callable[..., MarketoEmulator]) -> Iterator[httpx.Client]:
    with closing(signed_in(start_marketo())) as http:
        http.post("/rest/v1/leads/schema/fields.json", json={"input": [
            {"name": "dynamicsContactId", "displayName": "Dynamics Contact Id", "dataType": "string"}]})
        http.post("/rest/v1/leads.json", json={"input": [{"email": "a@x.com", "dynamicsContactId": "c-1"}]})
        yield http


PROJECT_FIELDS = [
    {"name": "dynamicsProjectId", "displayName": "Dynamics Project Id", "dataType": "string", "isDedupeField": True},
    {"name": "dynamicsContactId", "displayName": "Contact", "dataType": "link",
     "relatedTo": {"name": "lead", "field": "dynamicsContactId"}},
    {"name": "projectName", "displayName": "Project Name", "dataType": "string"},
]


def _make_type(http: httpx.Client, api_name: str = "dynProject") -> None:
    assert http.post("/rest/v1/customobjects/schema.json", json={
        "action": "createOnly", "apiName": api_name, "displayName": "Dyn Project"}).json()["success"]
    assert http.post(f"/rest/v1/customobjects/schema/{api_name}/addField.json",
                     json={"input": PROJECT_FIELDS}).json()["success"]


def test_marketo_type_is_a_draft_until_approved_then_upserts_linked_records(marketo: httpx.Client) -> None:
    _make_type(marketo)
    draft = marketo.get("/rest/v1/customobjects/schema/dynProject/describe.json").json()["result"][0]
    assert draft["state"] == "draft" and draft["dedupeFields"] == ["dynamicsProjectId"]
    refused = marketo.post("/rest/v1/customobjects/dynProject.json", json={"input": [{"dynamicsProjectId": "p"}]})
    assert refused.json()["errors"][0]["code"] == "1013"
    assert marketo.post("/rest/v1/customobjects/schema/dynProject/approve.json").json()["success"]
    listed = marketo.get("/rest/v1/customobjects.json").json()["result"]
    assert [t["name"] for t in listed] == ["dynProject"]
    assert listed[0]["relationships"][0]["relatedTo"] == {"name": "lead", "field": "dynamicsContactId"}
    body = {"action": "createOrUpdate", "dedupeBy": "dedupeFields", "input": [
        {"dynamicsProjectId": "p1", "dynamicsContactId": "c-1", "projectName": "One"},
        {"dynamicsProjectId": "p2", "dynamicsContactId": "c-404", "projectName": "Two"}]}
    result = marketo.post("/rest/v1/customobjects/dynProject.json", json=body).json()["result"]
    assert [r["status"] for r in result] == ["created", "skipped"]
    again = marketo.post("/rest/v1/customobjects/dynProject.json", json=body).json()["result"]
    assert again[0] == {"seq": 0, "status": "updated", "marketoGUID": result[0]["marketoGUID"]}
    found = marketo.get("/rest/v1/customobjects/dynProject.json",
                        params={"filterType": "dedupeFields", "filterValues": "p1"}).json()["result"]
    assert found == [{"marketoGUID": result[0]["marketoGUID"], "dynamicsProjectId": "p1"}]


def test_marketo_enforces_custom_object_limits(marketo: httpx.Client) -> None:
    _make_type(marketo)

    def add(fields: list[dict[str, Any]]) -> str | None:
        answer = marketo.post("/rest/v1/customobjects/schema/dynProject/addField.json", json={"input": fields})
        return None if answer.json()["success"] else answer.json()["errors"][0]["message"]

    assert "Invalid dataType" in (add([{"name": "x", "displayName": "X", "dataType": "picklist"}]) or "")
    assert "Invalid field name" in (add([{"name": "9lives", "displayName": "X", "dataType": "string"}]) or "")
    many = [{"name": f"f{i}", "displayName": f"F {i}", "dataType": "string"} for i in range(48)]
    assert "At most 50 fields" in (add(many) or "")
    dedupe = [{"name": f"d{i}", "displayName": "D", "dataType": "string", "isDedupeField": True} for i in range(3)]
    assert "At most 3 dedupe fields" in (add(dedupe) or "")
    marketo.post("/rest/v1/customobjects/schema/dynProject/approve.json")
    link = [{"name": "other", "displayName": "O", "dataType": "link", "relatedTo": {"name": "lead", "field": "id"}}]
    assert "cannot change after approval" in (add(link) or "")
    assert add([{"name": f"a{i}", "displayName": "A", "dataType": "string"} for i in range(20)]) is None
    marketo.post("/rest/v1/customobjects/schema/dynProject/approve.json")
    assert "20 fields added after approval" in (add([{"name": "z", "displayName": "Z", "dataType": "string"}]) or "")
    renamed = marketo.post("/rest/v1/customobjects/schema.json", json={
        "action": "updateOnly", "apiName": "dynProject", "displayName": "Other"}).json()
    assert "cannot change after approval" in renamed["errors"][0]["message"]
    for n in range(9):
        marketo.post("/rest/v1/customobjects/schema.json", json={"apiName": f"t{n}", "displayName": f"T {n}"})
    eleventh = marketo.post("/rest/v1/customobjects/schema.json", json={"apiName": "t9", "displayName": "T"}).json()
    assert "At most 10" in eleventh["errors"][0]["message"]


def test_the_client_lists_custom_tables_and_reads_columns_only_of_those_chosen(client: DataverseClient) -> None:
    tables = {t.logical_name: t for t in client.custom_tables()}
    assert tables["new_projectnote"].display_name == "Project Note" and tables["new_project"].primary_id == \
        "new_projectid"
    assert [(lk.attribute, lk.target) for lk in tables["new_project"].lookups] == [("new_contactid", "contact")]
    assert all(not t.attributes for t in tables.values())
    chosen = {t.logical_name: t for t in client.with_columns(list(tables.values()), ["new_project"])}
    assert "new_budget" in {a.logical_name for a in chosen["new_project"].attributes}
    assert not chosen["new_projectnote"].attributes
