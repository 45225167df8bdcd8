"""The Marketo emulator's opportunities and opportunity roles follow the documented rules, seen through raw HTTP."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import closing
from typing import Any

import httpx
import pytest

from sandbox.marketo import MarketoEmulator
from tests.support.marketo import signed_in


@pytest.fixture
def http(start_marketo: Callable[..., MarketoEmulator]) -> Iterator[httpx.Client]:
    with closing(signed_in(start_marketo())) as client:
        yield client


def _post(http: httpx.Client, path: str, records: list[dict[str, Any]], **head: Any) -> dict[str, Any]:
    body = {"action": "createOrUpdate", "dedupeBy": "dedupeFields", **head, "input": records}
    return http.post(path, json=body).json()


def test_opportunities_upsert_on_their_external_id_and_need_a_name(http: httpx.Client) -> None:
    created = _post(http, "/rest/v1/opportunities.json", [
        {"externalOpportunityId": "o1", "name": "Chairs", "amount": 1604.47, "externalCompanyId": "a1"},
        {"externalOpportunityId": "o2"},
    ])["result"]
    assert [r["seq"] for r in created] == [0, 1]
    assert created[0]["status"] == "created" and created[0]["marketoGUID"]
    assert created[1]["status"] == "skipped" and created[1]["reasons"][0]["code"] == "1003"
    updated = _post(http, "/rest/v1/opportunities.json", [{"externalOpportunityId": "o1", "amount": 10}])["result"]
    assert updated[0] == {"seq": 0, "status": "updated", "marketoGUID": created[0]["marketoGUID"]}
    found = http.get("/rest/v1/opportunities.json", params={
        "filterType": "externalOpportunityId", "filterValues": "o1,o2", "fields": "name,amount"}).json()["result"]
    assert found == [{"seq": 0, "marketoGUID": created[0]["marketoGUID"], "name": "Chairs", "amount": 10}]
    refused = _post(http, "/rest/v1/opportunities.json", [{"marketoGUID": "x", "name": "y"}], dedupeBy="idField")
    assert refused["success"] is False and refused["errors"][0]["code"] == "1003"  # idField only with updateOnly
    describe = http.get("/rest/v1/opportunities/describe.json").json()["result"][0]
    assert (describe["idField"], describe["dedupeFields"]) == ("marketoGUID", ["externalOpportunityId"])


def test_roles_need_the_opportunity_and_the_lead_and_dedupe_on_the_compound_key(http: httpx.Client) -> None:
    lead_id = http.post("/rest/v1/leads.json", json={"action": "createOrUpdate", "input": [
        {"email": "ann@example.com"}]}).json()["result"][0]["id"]
    _post(http, "/rest/v1/opportunities.json", [{"externalOpportunityId": "o1", "name": "Chairs"}])
    role = {"externalOpportunityId": "o1", "leadId": lead_id, "role": "Decision Maker", "isPrimary": True}
    results = _post(http, "/rest/v1/opportunities/roles.json", [
        role, {**role, "externalOpportunityId": "o9"}, {**role, "leadId": lead_id + 100}])["result"]
    assert [r["status"] for r in results] == ["created", "skipped", "skipped"]
    again = _post(http, "/rest/v1/opportunities/roles.json", [{**role, "isPrimary": False}])["result"]
    assert again[0]["status"] == "updated" and again[0]["marketoGUID"] == results[0]["marketoGUID"]
    found = http.post("/rest/v1/opportunities/roles.json", params={"_method": "GET"}, json={
        "filterType": "dedupeFields", "input": [{k: role[k] for k in ("externalOpportunityId", "leadId", "role")}],
    }).json()["result"]
    assert len(found) == 1 and found[0]["isPrimary"] is False
    describe = http.get("/rest/v1/opportunities/roles/describe.json").json()["result"][0]
    assert describe["dedupeFields"] == ["externalOpportunityId", "leadId", "role"]


def test_roles_are_deleted_by_their_compound_key_or_their_guid(http: httpx.Client) -> None:
    lead_id = http.post("/rest/v1/leads.json", json={"action": "createOrUpdate", "input": [
        {"email": "bo@example.com"}]}).json()["result"][0]["id"]
    _post(http, "/rest/v1/opportunities.json", [{"externalOpportunityId": "o1", "name": "Chairs"}])
    key = {"externalOpportunityId": "o1", "leadId": lead_id}
    created = _post(http, "/rest/v1/opportunities/roles.json", [{**key, "role": "Influencer"},
                                                                {**key, "role": "Stakeholder"}])["result"]
    deleted = http.post("/rest/v1/opportunities/roles/delete.json", json={"deleteBy": "dedupeFields", "input": [
        {**key, "role": "Influencer"}, {**key, "role": "Decision Maker"}]}).json()["result"]
    assert deleted[0] == {"seq": 0, "status": "deleted", "marketoGUID": created[0]["marketoGUID"]}
    assert deleted[1]["status"] == "skipped" and deleted[1]["reasons"][0]["code"] == "1013"
    by_guid = http.post("/rest/v1/opportunities/roles/delete.json", json={
        "deleteBy": "idField", "input": [{"marketoGUID": created[1]["marketoGUID"]}]}).json()["result"]
    assert by_guid[0]["status"] == "deleted"
    left = http.get("/rest/v1/opportunities/roles.json", params={
        "filterType": "externalOpportunityId", "filterValues": "o1"}).json()["result"]
    assert left == []
