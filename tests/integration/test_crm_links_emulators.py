"""What the CRM links rely on, in the emulators over loopback: lookup targets and users on the Dataverse side;
sales persons, the 718 refusal and company fields shown on linked people on the Marketo side."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import closing

import httpx
import pytest

from bot.dynamics.client import DataverseClient
from bot.dynamics.users import count_owner_candidates, read_users
from bot.models import Entity
from bot.sync.links import LOOKUP_TARGET
from sandbox.dynamics import DynamicsEmulator
from sandbox.marketo import MarketoEmulator
from tests.support.marketo import signed_in


@pytest.fixture
def emulator(start_dynamics: Callable[..., DynamicsEmulator]) -> DynamicsEmulator:
    return start_dynamics(records={"lead": 30, "contact": 20, "account": 5})


@pytest.fixture
def marketo(start_marketo: Callable[..., MarketoEmulator]) -> Iterator[httpx.Client]:
    with closing(signed_in(start_marketo())) as http:
        yield http


def test_lookups_name_their_target_table_when_asked(emulator: DynamicsEmulator, client: DataverseClient) -> None:
    emulator.update_record("contact", 2, ownerid=emulator.team_id)
    contacts = [r for p in client.iter_pages(Entity.contact, ["_parentcustomerid_value", "_ownerid_value"])
                for r in p.records]
    assert {r["_parentcustomerid_value" + LOOKUP_TARGET] for r in contacts} == {"account"}
    assert [r["_ownerid_value" + LOOKUP_TARGET] for r in contacts].count("team") == 1
    assert contacts[2]["_ownerid_value"] == emulator.team_id
    leads = [r for p in client.iter_pages(Entity.lead, ["_parentaccountid_value"]) for r in p.records]
    with_parent = [r for r in leads if r["_parentaccountid_value"]]
    assert 0 < len(with_parent) < len(leads)
    assert all(r["_parentaccountid_value" + LOOKUP_TARGET] == "account" for r in with_parent)
    plain = client.get(client.url("contacts", {"$select": "_ownerid_value"})).json()["value"][0]
    assert "_ownerid_value" + LOOKUP_TARGET not in plain  # only when the Prefer header asks for it


def test_users_are_read_by_id_with_their_names(emulator: DynamicsEmulator, client: DataverseClient) -> None:
    owner = next(emulator.expected_records("lead", ["_ownerid_value"]))["_ownerid_value"]
    users = read_users(client, [owner, owner, "not-a-guid", "00000000-0000-0000-0000-000000000000"])
    assert len(users) == 1 and users[0].systemuserid == owner
    assert users[0].firstname and users[0].lastname == "Owner" and users[0].internalemailaddress
    assert count_owner_candidates(client) == 4  # the sync user and three owners; no application users


def _post(http: httpx.Client, path: str, body: dict) -> list[dict]:
    answer = http.post(path, json=body).json()
    assert answer["success"], answer
    return answer["result"]


def test_sales_persons_are_upserted_described_and_read(marketo: httpx.Client) -> None:
    person = {"externalSalesPersonId": "u1", "email": "ann@contoso.com", "firstName": "Ann", "lastName": "Lee"}
    body = {"action": "createOrUpdate", "dedupeBy": "dedupeFields", "input": [person]}
    assert [r["status"] for r in _post(marketo, "/rest/v1/salespersons.json", body)] == ["created"]
    body["input"] = [{**person, "lastName": "Li"}, {"externalSalesPersonId": "u1", "email": "bad"}]
    updated, skipped = _post(marketo, "/rest/v1/salespersons.json", body)
    assert (updated["seq"], updated["status"]) == (0, "updated") and skipped["status"] == "skipped"
    found = marketo.get("/rest/v1/salespersons.json", params={
        "filterType": "externalSalesPersonId", "filterValues": "u1", "fields": "email,lastName"}).json()["result"]
    assert [(r["email"], r["lastName"]) for r in found] == [("ann@contoso.com", "Li")]
    described = marketo.get("/rest/v1/salespersons/describe.json").json()["result"][0]
    assert described["dedupeFields"] == ["externalSalesPersonId"]
    assert ["email"] in described["searchableFields"]


def test_an_unknown_sales_person_is_refused_and_a_linked_lead_shows_its_company(marketo: httpx.Client) -> None:
    leads = {"action": "createOrUpdate", "lookupField": "email",
             "input": [{"email": "a@x.com", "externalSalesPersonId": "nobody"}]}
    refused = _post(marketo, "/rest/v1/leads.json", leads)[0]
    assert refused["status"] == "skipped" and refused["reasons"][0]["code"] == "718"
    companies = {"action": "createOrUpdate", "dedupeBy": "dedupeFields",
                 "input": [{"externalCompanyId": "acc1", "company": "Acme", "externalSalesPersonId": "nobody"}]}
    assert _post(marketo, "/rest/v1/companies.json", companies)[0]["reasons"][0]["code"] == "718"
    companies["input"] = [{"externalCompanyId": "acc1", "company": "Acme", "website": "https://acme.example"}]
    assert _post(marketo, "/rest/v1/companies.json", companies)[0]["status"] == "created"

    leads["input"] = [{"email": "a@x.com", "company": "Own Co", "website": "https://own.example"}]
    _post(marketo, "/rest/v1/leads.json", leads)
    leads["input"] = [{"email": "a@x.com", "externalCompanyId": "acc1"}]
    assert _post(marketo, "/rest/v1/leads.json", leads)[0]["status"] == "updated"
    read = marketo.get("/rest/v1/leads.json", params={"filterType": "email", "filterValues": "a@x.com",
                                                       "fields": "company,website,externalCompanyId"}).json()
    assert read["result"][0] | {"id": 0} == {"id": 0, "company": "Acme", "website": "https://acme.example",
                                              "externalCompanyId": "acc1"}
    leads["input"] = [{"email": "a@x.com", "company": "Renamed"}]
    assert _post(marketo, "/rest/v1/leads.json", leads)[0]["reasons"][0]["code"] == "1021"
