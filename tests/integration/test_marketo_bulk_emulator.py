"""The emulator's Bulk Import follows the reference (C9, B6), seen through raw HTTP."""

from __future__ import annotations

import csv
import io
import time
from contextlib import closing
from typing import Any

import httpx

from sandbox.marketo_bulk import MAX_FILE_BYTES
from tests.support.marketo import signed_in


def _csv(rows: list[list[Any]]) -> bytes:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    return out.getvalue().encode()


def _upload(http: httpx.Client, data: bytes, **form: str) -> httpx.Response:
    return http.post("/bulk/v1/leads.json", params={"format": "csv"}, data=form,
                     files={"file": ("leads.csv", data, "text/csv")})


def _wait(http: httpx.Client, batch_id: int, timeout: float = 10) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        status = http.get(f"/bulk/v1/leads/batch/{batch_id}.json").json()["result"][0]
        if status["status"] in ("Complete", "Failed") or time.monotonic() > deadline:
            return status
        time.sleep(0.02)


def test_import_upserts_by_lookup_field_and_reports_failures_and_warnings(start_marketo) -> None:
    emulator = start_marketo(import_rate=1000)
    with closing(signed_in(emulator)) as http:
        http.post("/rest/v1/leads.json", json={"input": [{"email": "old@x.com", "firstName": "Old"}]})
        data = _csv([["email", "firstName", "leadScore", "createdAt"],
                     ["old@x.com", "Renamed", "7", ""],
                     ["new@x.com", "New", "", ""],
                     ["bad@x.com", "Bad", "seven", ""],
                     ["", "NoKey", "", ""],
                     ["ro@x.com", "ReadOnly", "", "2020-01-01T00:00:00Z"]])
        created = _upload(http, data, lookupField="email").json()
        assert created["success"] and created["result"][0]["status"] == "Queued"
        status = _wait(http, created["result"][0]["batchId"])
        assert status["status"] == "Complete"
        assert (status["numOfLeadsProcessed"], status["numOfRowsFailed"], status["numOfRowsWithWarning"]) == (5, 2, 1)
        assert "3 records imported" in status["message"]
        assert emulator.lead_by("email", "old@x.com")["firstName"] == "Renamed"
        assert emulator.lead_by("email", "new@x.com")["firstName"] == "New"
        assert emulator.lead_by("email", "ro@x.com")["createdAt"] != "2020-01-01T00:00:00Z"
        assert emulator.lead_count() == 3
        failures = http.get(f"/bulk/v1/leads/batch/{status['batchId']}/failures.json")
        assert failures.headers["content-type"].startswith("text/csv")
        rows = list(csv.reader(io.StringIO(failures.text)))
        assert rows[0] == ["email", "firstName", "leadScore", "createdAt", "Import Failure Reason"]
        assert [r[0] for r in rows[1:]] == ["bad@x.com", ""] and "leadScore" in rows[1][-1]
        warnings = list(csv.reader(io.StringIO(http.get(f"/bulk/v1/leads/batch/{status['batchId']}/warnings.json").text)))
        assert warnings[0][-1] == "Import Warning Reason" and warnings[1][0] == "ro@x.com"


def test_unknown_column_fails_every_row_and_the_lookup_field_must_be_searchable(start_marketo) -> None:
    emulator = start_marketo(import_rate=1000)
    with closing(signed_in(emulator)) as http:
        job = _upload(http, _csv([["email", "noSuchField"], ["a@x.com", "1"], ["b@x.com", "2"]])).json()
        status = _wait(http, job["result"][0]["batchId"])
        assert status["numOfRowsFailed"] == 2 and emulator.lead_count() == 0
        refused = _upload(http, _csv([["firstName"], ["Ann"]]), lookupField="firstName").json()
        assert not refused["success"] and refused["errors"][0]["code"] == "1011"
        by_id = _upload(http, _csv([["id", "firstName"], ["999", "Ghost"]]), lookupField="id").json()
        assert _wait(http, by_id["result"][0]["batchId"])["numOfRowsFailed"] == 1  # id: update only


def test_queue_holds_ten_jobs_runs_two_at_a_time_and_refuses_big_files(start_marketo) -> None:
    emulator = start_marketo(import_rate=50)
    with closing(signed_in(emulator)) as http:
        rows = [["email"], *([f"p{i}@x.com"] for i in range(20))]
        ids = [_upload(http, _csv(rows)).json()["result"][0]["batchId"] for _ in range(10)]
        eleventh = _upload(http, _csv(rows)).json()
        assert not eleventh["success"] and eleventh["errors"][0]["code"] == "1016"
        statuses = [http.get(f"/bulk/v1/leads/batch/{i}.json").json()["result"][0]["status"] for i in ids]
        assert statuses.count("Queued") >= 8 and "Complete" not in statuses[2:]
        assert _wait(http, ids[0])["status"] == "Complete"
        assert emulator.bulk.max_running_seen == 2
        big = _upload(http, b"email\n" + b"x" * MAX_FILE_BYTES)
        assert big.status_code == 413
        assert emulator.calls("/bulk/v1/leads.json")[0].admitted  # bulk calls count like REST calls
        assert emulator.quota_used >= 12


def test_import_rows_fail_as_sync_leads_would_for_unknown_owners_and_company_fields_on_linked_persons(
        start_marketo) -> None:
    """An unknown sales person fails its row (718), and so do company fields on a person linked to a company
    (1021): the same rules as Sync Leads (reference C6, B6)."""
    marketo = start_marketo()
    with closing(signed_in(marketo)) as http:
        http.post("/rest/v1/companies.json", json={"action": "createOrUpdate", "dedupeBy": "dedupeFields",
                                                   "input": [{"externalCompanyId": "acc-1", "company": "Acme"}]})
        http.post("/rest/v1/salespersons.json", json={"action": "createOrUpdate", "dedupeBy": "dedupeFields",
                                                      "input": [{"externalSalesPersonId": "u-1", "email": "o@x.com"}]})
        rows = [["email", "externalCompanyId", "externalSalesPersonId", "company"],
                ["ok@x.com", "acc-1", "u-1", ""], ["nobody@x.com", "", "u-unknown", ""],
                ["linked@x.com", "acc-1", "", "Other Inc"], ["free@x.com", "", "", "Own Co"]]
        batch = _upload(http, _csv(rows)).json()["result"][0]["batchId"]
        status = _wait(http, batch)
        assert (status["numOfLeadsProcessed"], status["numOfRowsFailed"]) == (4, 2)
        failures = http.get(f"/bulk/v1/leads/batch/{batch}/failures.json").text
        assert "nobody@x.com" in failures and "ExternalSalesPersonID not found" in failures
        assert "linked@x.com" in failures and "Company update not allowed" in failures
        persons = {row["email"]: row for row in marketo.leads()}
        assert set(persons) == {"ok@x.com", "free@x.com"} and persons["ok@x.com"]["company"] == "Acme"
