"""Dataverse writes over real HTTPS against the emulator: create, update, UpdateMultiple and $batch,
validation errors naming the column, who changed what, and service protection on writes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from bot.dynamics import errors
from bot.dynamics.client import DataverseClient
from bot.dynamics.writes import check_required
from bot.models import Entity
from sandbox.dynamics import DynamicsEmulator
from tests.support.dataverse import Sleeps

WHO = ["lastname", "subject", "_createdby_value", "_modifiedby_value"]


@pytest.fixture
def emulator(request: pytest.FixtureRequest, start_dynamics: Callable[..., DynamicsEmulator]) -> DynamicsEmulator:
    return start_dynamics(**{"records": {"lead": 40, "contact": 10}, **getattr(request, "param", {})})


def rows_by_id(client: DataverseClient, entity: str, select: list[str]) -> dict[str, dict[str, Any]]:
    return {r[f"{entity}id"]: r for page in client.iter_pages(entity, select, track_changes=False)
            for r in page.records}


def delta_link(client: DataverseClient, entity: str, select: list[str]) -> str:
    link = list(client.iter_pages(entity, select))[-1].delta_link
    assert link
    return link


def changes(client: DataverseClient, link: str, select: list[str]) -> tuple[dict[str, dict[str, Any]], list[str]]:
    pages = list(client.iter_changes(link, select))
    return {r["leadid"]: r for p in pages for r in p.records}, [i for p in pages for i in p.deleted_ids]


def test_create_and_update_are_read_back_and_seen_by_change_tracking(client: DataverseClient) -> None:
    me = client.whoami().user_id
    link = delta_link(client, "lead", WHO)
    new_id = client.create(Entity.lead, {"lastname": "Ng", "subject": "Web form", "emailaddress1": "ng@x.com"})
    existing = next(iter(rows_by_id(client, "lead", WHO)))
    client.update("lead", existing, {"lastname": "Okoye"})

    rows = rows_by_id(client, "lead", [*WHO, "emailaddress1"])
    assert rows[new_id]["lastname"] == "Ng" and rows[new_id]["emailaddress1"] == "ng@x.com"
    assert rows[new_id]["_createdby_value"] == me and rows[new_id]["_modifiedby_value"] == me
    assert rows[existing]["lastname"] == "Okoye" and rows[existing]["_modifiedby_value"] == me
    assert rows[existing]["_createdby_value"] != me  # made by a person before the sync existed

    changed, deleted = changes(client, link, WHO)
    assert set(changed) == {new_id, existing} and deleted == []
    assert changed[existing]["lastname"] == "Okoye"


def test_a_change_by_a_person_is_told_apart_from_the_sync_users(
    emulator: DynamicsEmulator, client: DataverseClient
) -> None:
    me = client.whoami().user_id
    link = delta_link(client, "lead", WHO)
    emulator.update_record("lead", 3, lastname="Person")
    changed, _ = changes(client, link, WHO)
    (row,) = changed.values()
    assert row["lastname"] == "Person"
    assert row["_modifiedby_value"] == emulator.person_user_id != me


def test_update_of_a_deleted_row_is_an_error_not_a_new_row(emulator: DynamicsEmulator, client: DataverseClient) -> None:
    gone = emulator.record_id("lead", 5)
    emulator.delete_record("lead", 5)
    before = emulator.count_records("lead")
    with pytest.raises(errors.RecordMissing):
        client.update("lead", gone, {"lastname": "Back"})
    assert emulator.count_records("lead") == before


@pytest.mark.parametrize("bulk", [True, False], ids=["UpdateMultiple", "batch"])
def test_update_many_writes_every_row_in_chunks(emulator: DynamicsEmulator, client: DataverseClient,
                                                bulk: bool) -> None:
    if not bulk:
        emulator.without_bulk_messages("lead")
    client.write_batch_size = 10
    ids = list(rows_by_id(client, "lead", ["lastname"]))[:25]
    link = delta_link(client, "lead", ["lastname"])
    calls = client.calls
    failures = client.update_many("lead", [{"leadid": i, "lastname": f"Bulk {n}"} for n, i in enumerate(ids)])
    assert failures == {}
    assert client.calls - calls == 1 + 3  # the message lookup, then one request per chunk of 10
    rows = rows_by_id(client, "lead", ["lastname", "_modifiedby_value"])
    assert [rows[i]["lastname"] for i in ids] == [f"Bulk {n}" for n in range(25)]
    changed, _ = changes(client, link, ["lastname"])
    assert set(changed) == set(ids)


@pytest.mark.parametrize("bulk", [True, False], ids=["UpdateMultiple", "batch"])
def test_update_many_reports_only_the_rows_at_fault(emulator: DynamicsEmulator, client: DataverseClient,
                                                    bulk: bool) -> None:
    if not bulk:
        emulator.without_bulk_messages("lead")
    ids = list(rows_by_id(client, "lead", ["lastname"]))[:4]
    gone = emulator.record_id("lead", 30)
    emulator.delete_record("lead", 30)
    rows = [{"leadid": i, "lastname": "Fine"} for i in ids]
    rows[1]["lastname"] = "x" * 51
    failures = client.update_many("lead", [*rows, {"leadid": gone, "lastname": "Fine"}])
    assert set(failures) == {ids[1], gone}
    assert isinstance(failures[ids[1]], errors.InvalidValue) and failures[ids[1]].attribute == "lastname"
    assert isinstance(failures[gone], errors.RecordMissing)
    read = rows_by_id(client, "lead", ["lastname"])
    assert [read[i]["lastname"] for i in ids if i != ids[1]] == ["Fine"] * 3


@pytest.mark.parametrize(("values", "error", "attribute"), [
    ({"lastname": "x" * 51}, errors.InvalidValue, "lastname"),
    ({"lastname": "Ng", "numberofemployees": "many"}, errors.InvalidValue, "numberofemployees"),
    ({"lastname": "Ng", "donotbulkemail": "yes"}, errors.InvalidValue, "donotbulkemail"),
    ({"lastname": "Ng", "new_shoesize": 42}, errors.UnknownAttribute, "new_shoesize"),
    ({"lastname": "Ng", "ownerid@odata.bind": None}, errors.RequiredAttributeMissing, "ownerid"),
])
def test_validation_errors_come_back_typed_and_name_the_column(
    emulator: DynamicsEmulator, client: DataverseClient, values: dict[str, Any], error: type, attribute: str
) -> None:
    before = emulator.count_records("lead")
    with pytest.raises(error) as refused:
        client.create("lead", values)
    assert refused.value.attribute == attribute
    assert f"'{attribute}'" in refused.value.user_message
    assert emulator.count_records("lead") == before


def test_business_required_columns_come_from_metadata_and_are_checked_first(client: DataverseClient) -> None:
    assert client.required_attributes("lead") == ["lastname", "subject"]
    assert client.required_attributes("account") == ["name"]
    with pytest.raises(errors.RequiredAttributeMissing) as missing:
        check_required("lead", {"lastname": "Ng", "subject": " ".strip()}, client.required_attributes("lead"))
    assert missing.value.missing == ["subject"]
    assert "'subject'" in missing.value.user_message
    check_required("lead", {"lastname": "Ng", "subject": "Web"}, ["lastname", "subject"])
    # Dataverse itself enforces only SystemRequired: a create without them succeeds
    assert client.create("lead", {"emailaddress1": "no.name@x.com"})


def test_a_throttled_write_waits_retry_after_and_is_made_once(
    emulator: DynamicsEmulator, client: DataverseClient, sleeps: Sleeps
) -> None:
    before = emulator.count_records("lead")
    emulator.fail_next(1, 429)
    client.create("lead", {"lastname": "Patient"})
    client.whoami()
    emulator.fail_next(1, 429)
    client.update("lead", emulator.record_id("lead", 0), {"lastname": "Patient"})
    assert sleeps.waits == [1.0, 1.0]
    assert emulator.count_records("lead") == before + 1


@pytest.mark.parametrize("emulator", [{"records": {"lead": 5}, "max_requests": 4, "window_seconds": 1.0}],
                         indirect=True)
def test_writes_count_against_the_service_protection_limit(
    emulator: DynamicsEmulator, client: DataverseClient, sleeps: Sleeps
) -> None:
    for n in range(6):
        client.update("lead", emulator.record_id("lead", n % 5), {"lastname": f"Busy {n}"})
    assert emulator.throttled >= 1 and 1.0 in sleeps.waits


def test_a_create_is_not_repeated_after_a_server_error(emulator: DynamicsEmulator, client: DataverseClient) -> None:
    before = emulator.count_records("lead")
    emulator.fail_next(1, 503)
    with pytest.raises(errors.DataverseError):
        client.create("lead", {"lastname": "Once"})
    assert emulator.count_records("lead") == before


# -- the emulator's Web API write surface, as documented (D1–D3) ------------------------------------


def test_create_with_return_representation_and_patch_semantics(emulator: DynamicsEmulator,
                                                                client: DataverseClient) -> None:
    made = client.send("POST", client.url("leads", {"$select": "leadid,lastname"}), body={"lastname": "Rep"},
                       prefer=["return=representation"], idempotent=False)
    assert made.status_code == 201 and "OData-EntityId" not in made.headers
    assert made.json()["lastname"] == "Rep" and made.json()["leadid"]
    fresh = "5e1d1f0e-0000-4000-8000-000000000001"
    upserted = client.send("PATCH", client.url(f"leads({fresh})"), body={"lastname": "Upsert"})
    assert upserted.status_code == 204 and upserted.headers["OData-EntityId"].endswith(f"leads({fresh})")
    assert rows_by_id(client, "lead", ["lastname"])[fresh]["lastname"] == "Upsert"
    with pytest.raises(errors.DataverseError) as exists:
        client.send("PATCH", client.url(f"leads({fresh})"), body={"lastname": "x"}, headers={"If-None-Match": "*"})
    assert exists.value.status == 412


def test_create_multiple_returns_ids_and_is_all_or_nothing(emulator: DynamicsEmulator,
                                                           client: DataverseClient) -> None:
    url = client.url("leads/Microsoft.Dynamics.CRM.CreateMultiple")
    item = {"@odata.type": "Microsoft.Dynamics.CRM.lead", "lastname": "Many"}
    ids = client.send("POST", url, body={"Targets": [item, item]}, idempotent=False).json()["Ids"]
    assert len(ids) == 2 and all(rows_by_id(client, "lead", ["lastname"])[i]["lastname"] == "Many" for i in ids)
    before = emulator.count_records("lead")
    with pytest.raises(errors.DataverseBadRequest):
        client.send("POST", url, body={"Targets": [item, {**item, "lastname": "y" * 60}]}, idempotent=False)
    with pytest.raises(errors.DataverseBadRequest):  # @odata.type is required on every item
        client.send("POST", url, body={"Targets": [{"lastname": "Untyped"}]}, idempotent=False)
    assert emulator.count_records("lead") == before


def test_a_batch_change_set_is_atomic_and_refers_to_earlier_parts(emulator: DynamicsEmulator,
                                                                   client: DataverseClient) -> None:
    def batch(*parts: str) -> str:
        inner = "".join(f"--cs\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n"
                        f"Content-ID: {n}\r\n\r\n{p}\r\n" for n, p in enumerate(parts, 1))
        body = f"--b\r\nContent-Type: multipart/mixed; boundary=cs\r\n\r\n{inner}--cs--\r\n--b--\r\n"
        answer = client.send("POST", client.url("$batch"), content=body.encode(),
                             headers={"Content-Type": "multipart/mixed; boundary=b"})
        return answer.text

    api = "/api/data/v9.2/"
    before = emulator.count_records("lead")
    ok = batch(f"POST {api}leads HTTP/1.1\r\nContent-Type: application/json\r\n\r\n{{\"lastname\": \"First\"}}",
               "PATCH $1 HTTP/1.1\r\nContent-Type: application/json\r\nIf-Match: *\r\n\r\n{\"subject\": \"Then\"}")
    assert ok.count("HTTP/1.1 204") == 2
    assert emulator.count_records("lead") == before + 1
    assert any(r["lastname"] == "First" and r["subject"] == "Then"
               for r in rows_by_id(client, "lead", ["lastname", "subject"]).values())
    failed = batch(f"POST {api}leads HTTP/1.1\r\nContent-Type: application/json\r\n\r\n{{\"lastname\": \"Lost\"}}",
                   "PATCH $3 HTTP/1.1\r\nContent-Type: application/json\r\n\r\n{}")
    assert "HTTP/1.1 400" in failed and "Content-ID Reference: '$3' does not exist" in failed
    assert emulator.count_records("lead") == before + 1  # the change set was rolled back
