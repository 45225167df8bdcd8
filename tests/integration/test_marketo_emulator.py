"""The Marketo emulator enforces the documented rules, seen through raw HTTP."""

from __future__ import annotations

import json
import threading
from typing import Any

import httpx

from sandbox.marketo import MarketoEmulator


def _token(http: httpx.Client) -> dict[str, Any]:
    response = http.post("/identity/oauth/token",
                         data={"grant_type": "client_credentials", "client_id": "cid", "client_secret": "csecret"})
    assert response.status_code == 200
    return response.json()


def _http(emulator: MarketoEmulator) -> httpx.Client:
    http = httpx.Client(base_url=emulator.url)
    http.headers["Authorization"] = f"Bearer {_token(http)['access_token']}"
    return http


def _sync(http: httpx.Client, records: list[dict[str, Any]], lookup: str = "email", **extra: Any) -> dict:
    body = {"action": "createOrUpdate", "lookupField": lookup, "input": records, **extra}
    return http.post("/rest/v1/leads.json", json=body).json()


def test_identity_returns_the_same_token_while_valid_and_refuses_bad_credentials(start_marketo) -> None:
    emulator = start_marketo()
    with httpx.Client(base_url=emulator.url) as http:
        first, second = _token(http), _token(http)
        assert first["access_token"] == second["access_token"]
        assert second["expires_in"] <= first["expires_in"] <= 3600
        bad = http.get("/identity/oauth/token", params={"grant_type": "client_credentials", "client_id": "cid",
                                                        "client_secret": "wrong"})
        assert bad.status_code == 401 and bad.json()["error"] == "invalid_client"
        unknown = http.post("/identity/oauth/token", data={"grant_type": "client_credentials",
                                                           "client_id": "nope", "client_secret": "x"})
        assert unknown.status_code == 401 and "No client" in unknown.json()["error_description"]


def test_token_rules_601_602_and_header_only(start_marketo) -> None:
    emulator = start_marketo()
    http = _http(emulator)
    assert http.get("/rest/v1/leads/describe2.json").json()["success"]
    token = http.headers["Authorization"][7:]
    in_query = httpx.get(f"{emulator.url}/rest/v1/leads/describe2.json", params={"access_token": token}).json()
    assert in_query["errors"][0]["code"] == "601"
    garbage = httpx.get(f"{emulator.url}/rest/v1/leads/describe2.json",
                        headers={"Authorization": "Bearer nope"}).json()
    assert garbage["errors"][0]["code"] == "601"
    emulator.expire_tokens()
    assert http.get("/rest/v1/leads/describe2.json").json()["errors"][0]["code"] == "602"
    assert _token(http)["access_token"] != token


def test_window_606_and_max_calls_in_any_window(start_marketo) -> None:
    emulator = start_marketo(calls_per_window=3, window_seconds=20, time_scale=0.05)  # a 1 s window
    http = _http(emulator)
    codes = [http.get("/rest/v1/leads/describe2.json").json().get("errors", [{}])[0].get("code") for _ in range(5)]
    assert codes == [None, None, None, "606", "606"]
    assert emulator.max_calls_in_any_window == 3
    assert [c.code for c in emulator.calls("/rest/v1/leads/describe2.json")].count("606") == 2


def test_concurrency_615(start_marketo) -> None:
    emulator = start_marketo(max_concurrency=2, latency=0.3)
    http = _http(emulator)
    codes: list[str | None] = []

    def call() -> None:
        body = http.get("/rest/v1/leads/describe2.json").json()
        codes.append(None if body["success"] else body["errors"][0]["code"])

    threads = [threading.Thread(target=call) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert codes.count(None) >= 2 and "615" in codes
    assert emulator.max_concurrent_seen == 2


def test_daily_quota_607(start_marketo) -> None:
    emulator = start_marketo(daily_quota=2)
    http = _http(emulator)
    codes = [http.get("/rest/v1/leads/describe2.json").json().get("errors", [{}])[0].get("code") for _ in range(3)]
    assert codes == [None, None, "607"]


def test_body_over_1mb_is_413_and_batches_over_300_refused(start_marketo) -> None:
    emulator = start_marketo()
    http = _http(emulator)
    big = [{"email": f"a{i}@x.com", "address": "x" * 20_000} for i in range(60)]
    assert http.post("/rest/v1/leads.json", json={"input": big}).status_code == 413
    many = _sync(http, [{"email": f"a{i}@x.com"} for i in range(301)])
    assert not many["success"] and many["errors"][0]["code"] == "1003"
    assert emulator.lead_count() == 0


def test_per_record_rules_and_dedupe(start_marketo) -> None:
    emulator = start_marketo()
    http = _http(emulator)
    records = [
        {"email": "ann@x.com", "firstName": "Ann", "numberOfEmployees": 12},
        {"email": "josé@x.com"},
        {"email": "not-an-email"},
        {"email": "b@x.com", "favouriteColour": "red"},
        {"email": "c@x.com", "numberOfEmployees": "twelve"},
        {"email": "d@x.com", "dateOfBirth": "2026-13-01"},
        {"email": "ANN@x.com", "lastName": "Lee"},
        {"firstName": "no lookup"},
    ]
    result = _sync(http, records)["result"]
    assert [r["status"] for r in result] == ["created", "skipped", "skipped", "skipped", "skipped", "skipped",
                                             "updated", "skipped"]
    assert [r["reasons"][0]["code"] for r in result if r["status"] == "skipped"] == [
        "1003", "1003", "1006", "1001", "1001", "1003"]
    assert result[0]["id"] == result[6]["id"]
    assert emulator.lead_by("email", "ann@x.com").items() >= {"firstName": "Ann", "lastName": "Lee"}.items()
    assert emulator.lead_count() == 1


def test_lookup_field_must_be_searchable_or_custom(start_marketo) -> None:
    emulator = start_marketo()
    http = _http(emulator)
    refused = _sync(http, [{"firstName": "A"}], lookup="firstName")
    assert refused["errors"][0]["code"] == "1011"
    created = http.post("/rest/v1/leads/schema/fields.json", json={"input": [
        {"name": "dynamicsLeadId", "displayName": "Dynamics Lead Id", "dataType": "string"}]}).json()
    assert created["result"] == [{"name": "dynamicsLeadId", "status": "created"}]
    describe = http.get("/rest/v1/leads/describe2.json").json()["result"][0]
    assert ["dynamicsLeadId"] in describe["searchableFields"]
    first = _sync(http, [{"dynamicsLeadId": "G1", "email": "same@x.com"}], lookup="dynamicsLeadId")
    second = _sync(http, [{"dynamicsLeadId": "G2", "email": "same@x.com"}], lookup="dynamicsLeadId")
    assert first["result"][0]["status"] == second["result"][0]["status"] == "created"
    assert len(emulator.leads()) == 2  # same email, different lookup keys: two persons


def test_field_schema_create_skips_and_paging(start_marketo) -> None:
    emulator = start_marketo()
    http = _http(emulator)
    body = {"input": [
        {"name": "email", "displayName": "Other Email", "dataType": "email"},
        {"name": "notes", "displayName": "Notes", "dataType": "text"},
        {"name": "9lives", "displayName": "Nine", "dataType": "string"},
        {"name": "ok", "displayName": "Email Address", "dataType": "string"},
        {"name": "fine", "displayName": "Fine", "dataType": "integer"},
    ]}
    result = http.post("/rest/v1/leads/schema/fields.json", json=body).json()["result"]
    assert [r["status"] for r in result] == ["skipped"] * 4 + ["created"]
    assert [r["reasons"][0]["code"] for r in result[:4]] == ["1017", "1003", "1003", "1017"]
    names: list[str] = []
    params: dict[str, Any] = {"batchSize": 10}
    while True:
        page = http.get("/rest/v1/leads/schema/fields.json", params=params).json()
        names += [f["name"] for f in page["result"]]
        if not page["moreResult"]:
            break
        params["nextPageToken"] = page["nextPageToken"]
    assert names == [f["name"] for f in emulator.fields()] and "fine" in names


def test_filter_lookup_get_and_form_post(start_marketo) -> None:
    emulator = start_marketo()
    http = _http(emulator)
    _sync(http, [{"email": f"p{i}@x.com", "firstName": f"P{i}"} for i in range(5)])
    got = http.get("/rest/v1/leads.json", params={"filterType": "email", "filterValues": "p1@x.com,p3@x.com,zz@x.com",
                                                  "fields": "email,firstName"}).json()
    assert [r["firstName"] for r in got["result"]] == ["P1", "P3"]
    form = http.post("/rest/v1/leads.json", data={"_method": "GET", "filterType": "email",
                                                  "filterValues": "p4@x.com"}).json()
    assert form["result"][0]["email"] == "p4@x.com"
    bad = http.get("/rest/v1/leads.json", params={"filterType": "firstName", "filterValues": "P1"}).json()
    assert bad["errors"][0]["code"] == "1003"


def test_companies_dedupe_on_external_id_and_1021(start_marketo) -> None:
    emulator = start_marketo()
    http = _http(emulator)
    body = {"action": "createOrUpdate", "dedupeBy": "dedupeFields",
            "input": [{"externalCompanyId": "A1", "company": "Acme"}, {"externalCompanyId": "A1", "industry": "X"}]}
    result = http.post("/rest/v1/companies.json", json=body).json()["result"]
    assert [(r["seq"], r["status"]) for r in result] == [(0, "created"), (1, "updated")]
    assert emulator.companies()[0].items() >= {"company": "Acme", "industry": "X"}.items()
    linked = _sync(http, [{"email": "e@x.com", "externalCompanyId": "A1", "company": "Renamed"}])
    assert linked["result"][0]["reasons"][0]["code"] == "1021"


def test_fault_injection_and_content_rules(start_marketo) -> None:
    emulator = start_marketo()
    http = _http(emulator)
    emulator.fail_next(1, 502)
    emulator.fail_next(1, "608", path="/rest/v1/leads.json")
    assert http.get("/rest/v1/leads/describe2.json").status_code == 502
    assert http.get("/rest/v1/leads/describe2.json").json()["success"]
    assert _sync(http, [{"email": "a@x.com"}])["errors"][0]["code"] == "608"
    raw = http.post("/rest/v1/leads.json", content=b"{not json", headers={"Content-Type": "application/json"})
    assert raw.json()["errors"][0]["code"] == "609"
    text = http.post("/rest/v1/leads.json", content=json.dumps({"input": []}), headers={"Content-Type": "text/plain"})
    assert text.json()["errors"][0]["code"] == "612"
    assert http.get("/rest/v1/nothing.json").json()["errors"][0]["code"] == "610"
    emulator.reset_counters()
    assert emulator.calls() == [] and emulator.max_batch_size_seen == 0
