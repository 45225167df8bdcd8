"""The Dataverse client over real HTTPS against the emulator: paging, resume, throttling, changes."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from bot.dynamics import errors
from bot.dynamics.client import DataverseClient
from bot.models import Entity
from sandbox.dynamics import DynamicsEmulator
from tests.support.dataverse import Sleeps
from tests.support.listener import listener

SELECT = ["emailaddress1", "firstname", "revenue", "_ownerid_value", "leadsourcecode"]


@pytest.fixture
def emulator(request: pytest.FixtureRequest, start_dynamics: Callable[..., DynamicsEmulator]) -> DynamicsEmulator:
    return start_dynamics(**{"records": {"lead": 1200, "contact": 300, "account": 50}, **getattr(request, "param", {})})


def ids(pages: Iterator[Any], key: str = "leadid") -> list[str]:
    return [record[key] for page in pages for record in page.records]


@pytest.mark.parametrize("emulator", [{"records": {"lead": 100_000}}], indirect=True)
def test_paging_over_100k_returns_every_record_exactly_once(emulator: DynamicsEmulator, client: DataverseClient) -> None:
    client.page_size = 5000
    seen = ids(client.iter_pages(Entity.lead, ["emailaddress1"], track_changes=False))
    expected = [r["leadid"] for r in emulator.expected_records("lead", ["emailaddress1"])]
    assert len(seen) == 100_000 and len(set(seen)) == 100_000
    assert seen == expected
    assert client.calls == 20  # one HTTP call per 5000-record page


def test_pages_carry_links_annotations_and_a_delta_link(emulator: DynamicsEmulator, client: DataverseClient) -> None:
    pages = list(client.iter_pages("lead", SELECT))
    assert [len(p.records) for p in pages] == [500, 500, 200]
    assert pages[0].link is None and pages[1].link == pages[0].next_link and pages[2].link == pages[1].next_link
    assert pages[-1].next_link is None and pages[-1].delta_link and all(p.delta_link is None for p in pages[:-1])
    first = pages[0].records[0]
    assert first["_ownerid_value@OData.Community.Display.V1.FormattedValue"].endswith("Owner")
    assert first["revenue@OData.Community.Display.V1.FormattedValue"].startswith("$")
    expected = next(emulator.expected_records("lead", SELECT))
    assert {k: first[k] for k in expected} == expected


def test_resume_from_a_saved_link(emulator: DynamicsEmulator, client: DataverseClient) -> None:
    head = []
    saved = None
    for page in client.iter_pages("lead", ["emailaddress1"]):
        if len(head) == 2:
            saved = page.link  # as a checkpoint would: the page not yet written
            break
        head.append(page)
    assert saved
    tail = list(client.iter_pages("lead", ["emailaddress1"], start_link=saved))
    assert tail[0].link == saved and tail[-1].delta_link
    all_ids = ids(iter(head)) + ids(iter(tail))
    assert sorted(all_ids) == sorted(r["leadid"] for r in emulator.expected_records("lead", []))
    assert len(all_ids) == len(set(all_ids))


@pytest.mark.parametrize("emulator", [{"records": {"lead": 3000}, "max_requests": 3, "window_seconds": 0.3}],
                         indirect=True)
def test_a_429_storm_is_ridden_out_without_losing_a_page(
    emulator: DynamicsEmulator, client: DataverseClient, sleeps: Sleeps
) -> None:
    client.page_size = 200
    emulator.fail_next(4, 429)
    seen = ids(client.iter_pages("lead", ["emailaddress1"]))
    assert sorted(seen) == sorted(r["leadid"] for r in emulator.expected_records("lead", []))
    assert len(seen) == 3000
    assert emulator.throttled >= 5 and client.throttled == emulator.throttled
    assert sleeps.waits and all(wait == 1.0 for wait in sleeps.waits)  # Retry-After honoured


def test_server_errors_are_retried_then_surface(emulator: DynamicsEmulator, client: DataverseClient) -> None:
    emulator.fail_next(2, 503)
    assert client.count("lead") == 1200
    client.max_retries = 1
    emulator.fail_next(2, 500)
    with pytest.raises(errors.DataverseError) as caught:
        client.count("lead")
    assert caught.value.status == 500


def test_typed_errors(emulator: DynamicsEmulator, client: DataverseClient) -> None:
    with pytest.raises(errors.DataverseBadRequest) as caught:
        next(client.iter_pages("lead", ["no_such_column"]))
    assert caught.value.code == "0x80060888" and "no_such_column" in caught.value.message
    emulator.fail_next(1, 403)
    with pytest.raises(errors.DataverseAccessDenied):
        client.whoami()
    emulator.fail_next(1, 404)
    with pytest.raises(errors.NotDataverse):
        client.whoami()
    with pytest.raises(errors.DataverseNotFound):
        client.get_user("00000000-0000-0000-0000-000000000000")


@pytest.mark.parametrize("emulator", [{"records": {"lead": 2000}, "sync_filter": {"lead": "new_synctomkto"}}],
                         indirect=True)
def test_counts_with_and_without_the_sync_filter(emulator: DynamicsEmulator, client: DataverseClient) -> None:
    filtered = sum(1 for _ in emulator.expected_records("lead", []))
    assert 0 < filtered < 2000
    assert client.count("lead") == 2000  # annotation is exact below 5000
    assert client.count("lead", filter_attribute="new_synctomkto") == filtered
    emulator.create_records("lead", 4000)  # over 5000: falls back to /$count
    assert client.count("lead") == 6000


def test_change_tracking_returns_updates_creates_and_deletes(emulator: DynamicsEmulator, client: DataverseClient) -> None:
    delta = [p for p in client.iter_pages("contact", ["emailaddress1", "firstname"])][-1].delta_link
    assert delta
    emulator.update_record("contact", 3, firstname="Zed")
    emulator.delete_record("contact", 5)
    created = emulator.create_records("contact", 2)
    pages = list(client.iter_changes(delta, ["emailaddress1", "firstname"]))
    records = [r for p in pages for r in p.records]
    assert {r["contactid"] for r in records} == {emulator.record_id("contact", i) for i in [3, *created]}
    assert next(r for r in records if r["contactid"] == emulator.record_id("contact", 3))["firstname"] == "Zed"
    assert [d for p in pages for d in p.deleted_ids] == [emulator.record_id("contact", 5)]
    again = list(client.iter_changes(pages[-1].delta_link or "", ["emailaddress1"]))
    assert again[-1].records == [] and again[-1].deleted_ids == []


def test_change_pages_follow_next_links(emulator: DynamicsEmulator, client: DataverseClient) -> None:
    client.page_size = 100
    delta = [p for p in client.iter_pages("account", ["name"])][-1].delta_link or ""
    created = emulator.create_records("account", 250)
    pages = list(client.iter_changes(delta, ["name"]))
    assert [len(p.records) for p in pages] == [100, 100, 50]
    assert {r["accountid"] for p in pages for r in p.records} == {emulator.record_id("account", i) for i in created}


def test_expired_or_narrower_delta_links_need_a_full_read(emulator: DynamicsEmulator, client: DataverseClient) -> None:
    delta = [p for p in client.iter_pages("contact", ["emailaddress1"])][-1].delta_link or ""
    with pytest.raises(errors.ChangeTokenExpired):
        next(client.iter_changes(delta, ["emailaddress1", "jobtitle"]))
    emulator.expire_change_tokens()
    with pytest.raises(errors.ChangeTokenExpired):
        next(client.iter_changes(delta, ["emailaddress1"]))


@pytest.mark.parametrize(
    "emulator",
    [{"records": {"lead": 10}, "extra_attributes": {"lead": 400}, "sync_filter": {"lead": "cr5a1_synctomarketo"}}],
    indirect=True,
)
def test_entity_metadata(emulator: DynamicsEmulator, client: DataverseClient) -> None:
    meta = client.entity_metadata(Entity.lead)
    names = {a.logical_name for a in meta.attributes}
    assert meta.entity_set == "leads" and meta.primary_id == "leadid" and meta.change_tracking
    assert len([n for n in names if n.startswith("new_extra")]) == 400
    assert not names & {"owneridname", "owneridyominame", "new_internalnote"}  # helpers and unreadable skipped
    by_name = {a.logical_name: a for a in meta.attributes}
    assert by_name["new_extra050"].display_name == "new_extra050"  # null label falls back to the logical name
    assert by_name["emailaddress1"].format == "Email" and by_name["telephone1"].format == "Phone"
    assert by_name["estimatedclosedate"].datetime_behavior == "DateOnly"
    assert by_name["modifiedon"].datetime_behavior == "UserLocal"
    assert by_name["ownerid"].read_name == "_ownerid_value"
    lookalike = by_name["cr5a1_synctomarketo"]
    assert lookalike.display_name == "Sync to Marketo" and lookalike.attribute_type == "BooleanType"
    assert lookalike.is_custom


# -- next links: the organization's own origin only, never the same link twice ----------------------


def test_a_next_link_to_another_origin_is_refused_and_gets_no_token(
    emulator: DynamicsEmulator, client: DataverseClient
) -> None:
    path = "/api/data/v9.2/leads?$skiptoken=x"
    with listener() as elsewhere:
        offsite = [f"http://127.0.0.1:{elsewhere.port}{path}",  # another host, plain http
                   f"http://localhost:{emulator.port}{path}",  # the organization's host over http
                   f"https://127.0.0.1:{emulator.port}{path}",  # the same server under another name
                   f"https://localhost:{elsewhere.port}{path}"]  # another port
        for link in offsite:
            emulator.send_next_link(link)
            calls = client.calls
            with pytest.raises(errors.OffOriginLink) as refused:
                list(client.iter_pages("lead", SELECT))
            assert client.calls == calls + 1  # the first page only
            assert "not the organization's address" in refused.value.user_message
        assert elsewhere.requests == []
        with pytest.raises(errors.OffOriginLink):
            list(client.iter_pages("lead", SELECT, start_link=offsite[0]))
        assert elsewhere.requests == []


def test_a_repeated_next_link_stops_the_read(emulator: DynamicsEmulator, client: DataverseClient) -> None:
    second_page = next(iter(client.iter_pages("lead", SELECT))).next_link
    emulator.send_next_link(second_page)
    calls = client.calls
    with pytest.raises(errors.RepeatedLink):
        list(client.iter_pages("lead", SELECT))
    assert client.calls == calls + 2  # page 1, page 2 (which points at itself), and no more


def test_change_reads_check_their_links_too(emulator: DynamicsEmulator, client: DataverseClient) -> None:
    client.page_size = 100
    delta = [p for p in client.iter_pages("account", ["name"])][-1].delta_link or ""
    emulator.create_records("account", 250)
    with pytest.raises(errors.OffOriginLink):
        list(client.iter_changes(delta.replace("https://localhost", "https://127.0.0.1"), ["name"]))
    emulator.send_next_link(delta)
    calls = client.calls
    with pytest.raises(errors.RepeatedLink):
        list(client.iter_changes(delta, ["name"]))
    assert client.calls == calls + 1


@pytest.mark.parametrize("emulator", [{"records": {"contact": 300}, "untracked_entities": {"contact"}}],
                         indirect=True)
def test_a_table_without_change_tracking_is_read_by_modifiedon(emulator: DynamicsEmulator,
                                                               client: DataverseClient) -> None:
    assert not client.change_tracking_enabled("contact") and client.change_tracking_enabled("lead")
    assert not client.entity_metadata(Entity.contact).change_tracking
    with pytest.raises(errors.DynamicsError):  # asking for change tracking on such a table fails
        next(client.iter_pages("contact", ["firstname"]))
    assert len(ids(client.iter_pages("contact", ["firstname"], track_changes=False), "contactid")) == 300

    since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 60))
    assert ids(client.iter_modified_since("contact", ["firstname"], since), "contactid") == []
    touched = [250, 7, 120]
    for index in touched:
        emulator.update_record("contact", index, firstname=f"Changed {index}")
    client.page_size = 2
    pages = list(client.iter_modified_since("contact", ["firstname"], since))
    records = [r for p in pages for r in p.records]
    assert len(pages) == 2 and all(p.delta_link is None for p in pages)
    assert {r["contactid"] for r in records} == {emulator.record_id("contact", i) for i in touched}
    assert [(r["modifiedon"], r["contactid"]) for r in records] == sorted((r["modifiedon"], r["contactid"])
                                                                          for r in records)


def test_reads_by_id_find_generated_created_and_not_deleted_rows(emulator: DynamicsEmulator,
                                                                 client: DataverseClient) -> None:
    """A read by ids (an `or` of key equalities, which the emulator answers from its key index) returns
    exactly the live rows asked for, in more chunks and pages than one, in any order, whichever way they came
    to be."""
    created = emulator.create_records("lead", 1)[0]
    emulator.delete_record("lead", 7)
    wanted = [emulator.record_id("lead", i) for i in range(0, 1200, 11)] + [emulator.record_id_at("lead", created)]
    asked = [*wanted, emulator.record_id("lead", 7), "00000000-0000-0000-0000-00000000abcd"]
    client.page_size = 7  # pages within a request: each page resumes from the row where the last one ended
    rows = client.read_by_ids(Entity.lead, [i.upper() for i in reversed(asked)], ["firstname"])
    assert sorted(row["leadid"] for row in rows) == sorted(wanted)
    assert all(set(row) >= {"leadid", "firstname"} for row in rows)


def test_reads_by_a_columns_values_match_a_scan_as_the_rows_change(emulator: DynamicsEmulator,
                                                                    client: DataverseClient) -> None:
    """A lookup of values in one column (the emulator's column index) returns what a scan would: the rows
    holding them now, case-insensitively and in the table's order across pages."""
    client.page_size = 7
    parents = [emulator.record_id("account", i) for i in (9, 4)]

    def by_parent() -> list[str]:
        rows = client.read_where_in("contacts", "_parentcustomerid_value", [p.upper() for p in parents], ["contactid"])
        return [row["contactid"] for row in rows]

    def scanned() -> list[str]:
        return [r["contactid"] for r in emulator.expected_records("contact", ["_parentcustomerid_value"],
                                                                  apply_filter=False)
                if r["_parentcustomerid_value"] in parents]

    assert len(scanned()) > client.page_size and by_parent() == scanned()
    moved = next(i for i in range(300) if emulator.record_id("contact", i) not in scanned())
    emulator.update_record("contact", moved, parentcustomerid=parents[0])
    assert emulator.record_id("contact", moved) in scanned() and by_parent() == scanned()

    names = {r["firstname"].lower() for r in emulator.expected_records("contact", ["firstname"], apply_filter=False)
             if r["firstname"] and r["firstname"] != r["firstname"].lower()}
    asked = sorted(names)[:2]
    assert asked, "mixed-case values to look up"
    expected = [r["contactid"] for r in emulator.expected_records("contact", ["firstname"], apply_filter=False)
                if (r["firstname"] or "").lower() in asked]
    condition = " or ".join(f"firstname eq '{name}'" for name in reversed(asked))
    found = [r["contactid"] for page in client.iter_rows("contacts", ["firstname"], filter_expression=condition)
             for r in page.records]
    assert len(expected) > client.page_size and found == expected
