"""Marketo's change feed: the emulator's activity log read through MarketoClient over loopback HTTP,
with the limiter on real Redis."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import closing
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bot.marketo.activities import LeadChange
from bot.marketo.client import MarketoClient
from bot.marketo.errors import MarketoFatal
from bot.marketo.limiter import SharedLimiter
from bot.models import MarketoField
from bot.store import Keys, LimiterState
from sandbox.marketo import MarketoEmulator
from tests.support.marketo import signed_in

SYNCED = ["email", "firstName", "lastName"]


@pytest.fixture
def marketo(redis_client, key_prefix) -> Iterator[Callable[..., tuple[MarketoEmulator, MarketoClient]]]:
    """An emulator (knobs) and a client on a fresh Redis limiter, with the id field created."""
    opened: list[tuple[MarketoEmulator, MarketoClient]] = []

    def make(batch_size: int = 300, **knobs: Any) -> tuple[MarketoEmulator, MarketoClient]:
        emulator = MarketoEmulator(client_id="cid", client_secret="csecret", window_seconds=2.0, **knobs).start()
        limiter = SharedLimiter(LimiterState(redis_client, Keys(key_prefix)), calls_per_window=100,
                                window_seconds=2.0, max_concurrency=5)
        client = MarketoClient(emulator.url, "cid", "csecret", limiter=limiter, batch_size=batch_size)
        opened.append((emulator, client))
        client.create_lead_fields([MarketoField(name="dynamicsLeadId", display_name="Dynamics Lead Id",
                                                data_type="string")])
        return emulator, client

    yield make
    for emulator, client in opened:
        client.close()
        emulator.stop()


def _people(n: int, start: int = 0) -> list[dict[str, Any]]:
    return [{"dynamicsLeadId": f"guid-{i}", "email": f"p{i}@example.com", "lastName": f"L{i}"}
            for i in range(start, start + n)]


def _since() -> datetime:
    return datetime.now(UTC) - timedelta(seconds=1)


def _all_changes(client: MarketoClient, token: str, fields: list[str] = SYNCED) -> list[LeadChange]:
    return [change for page in client.iter_lead_changes(token, fields) for change in page.changes]


def test_api_writes_are_attributed_to_the_api_user_and_a_persons_changes_are_not(marketo) -> None:
    emulator, client = marketo()
    token = client.paging_token(_since())
    created = client.sync_leads(_people(2), "dynamicsLeadId")
    client.sync_leads([{"dynamicsLeadId": "guid-0", "firstName": "Ann"}], "dynamicsLeadId")
    emulator.change_by_person(created[1].id, {"firstName": "Bo", "title": "CEO"}, source="Web form fillout")

    changes = _all_changes(client, token)

    assert [(c.lead_id, c.activity_type_id, c.new_values) for c in changes] == [
        (created[0].id, 12, {}), (created[1].id, 12, {}),  # New Lead: no fields, values are read from the lead
        (created[0].id, 13, {"firstName": "Ann"}), (created[1].id, 13, {"firstName": "Bo"})]  # no title
    new_a, new_b, by_api, by_person = changes
    assert client.api_user == "apiuser@emulator.local"
    assert new_a.by_api_user and new_b.by_api_user and by_api.by_api_user
    assert new_a.via_api and new_a.request_id and new_a.request_id == new_b.request_id  # one Sync Leads call
    assert by_api.attribute("reason") == "Web service API" and by_api.request_id != new_a.request_id
    assert not by_person.by_api_user and not by_person.via_api and by_person.request_id is None
    assert by_person.attribute("Source") == "Web form fillout" and by_person.fields[0].old_value is None
    assert len({c.marketo_guid for c in changes}) == 4
    assert all(c.activity_date.tzinfo is not None for c in changes)


def test_another_api_client_is_not_the_products_api_user(marketo) -> None:
    emulator, client = marketo()
    token = client.paging_token(_since())
    lead = client.sync_leads(_people(1), "dynamicsLeadId")[0].id
    # another integration's write: Source "Web service API" too, but another modifying user
    emulator.change_by_person(lead, {"firstName": "Cy"}, source="Web service API", user="other@integration.example")
    change = _all_changes(client, token)[-1]
    assert change.via_api and not change.by_api_user and change.modifying_user == "other@integration.example"


def test_paging_resumes_from_a_saved_token_losing_and_repeating_nothing(marketo) -> None:
    emulator, client = marketo(batch_size=5, activity_scan_block=7)
    token = client.paging_token(_since())
    leads = [r.id for r in client.sync_leads(_people(12), "dynamicsLeadId")]
    for lead in leads[:6]:
        emulator.change_by_person(lead, {"title": "Not synced"}, source="List import")  # filtered out
    for lead in leads[:9]:
        emulator.change_by_person(lead, {"firstName": f"F{lead}"}, source="Lead detail page")
    expected = 12 + 9

    seen: list[str] = []
    pages = client.iter_lead_changes(token, SYNCED)
    for _ in range(2):
        page = next(pages)
        seen += [c.marketo_guid for c in page.changes]
        saved = page.next_token
    pages.close()  # the worker dies here; the next one starts from the saved token
    with MarketoClient(emulator.url, "cid", "csecret", batch_size=5) as restarted:
        resumed = list(restarted.iter_lead_changes(saved, SYNCED))
    seen += [c.marketo_guid for page in resumed for c in page.changes]

    assert len(seen) == expected and len(set(seen)) == expected
    assert any(len(p.changes) < 5 for p in resumed[:-1])  # short pages while moreResult is true
    assert not resumed[-1].more and all(p.more for p in resumed[:-1])
    emulator.change_by_person(leads[0], {"lastName": "Later"}, source="Web form fillout")
    later = _all_changes(client, resumed[-1].next_token)
    assert [(c.lead_id, c.new_values) for c in later] == [(leads[0], {"lastName": "Later"})]
    reads = emulator.calls("/rest/v1/activities/leadchanges.json")
    assert reads and all(c.admitted for c in reads)  # activity reads count like every REST call


def test_lead_ids_and_fields_filter_the_changes(marketo) -> None:
    emulator, client = marketo()
    token = client.paging_token(_since())
    a, b = (r.id for r in client.sync_leads(_people(2), "dynamicsLeadId"))
    emulator.change_by_person(a, {"firstName": "A", "city": "Oslo"})
    emulator.change_by_person(b, {"firstName": "B"})
    page = client.lead_changes(token, ["city"], lead_ids=[a])
    assert [(c.lead_id, c.activity_type_id, c.new_values) for c in page.changes] == [
        (a, 12, {}), (a, 13, {"city": "Oslo"})]
    with pytest.raises(ValueError):
        client.lead_changes(token, ["city"], lead_ids=list(range(31)))


def test_a_token_from_now_sees_only_later_changes(marketo) -> None:
    emulator, client = marketo()
    lead = client.sync_leads(_people(1), "dynamicsLeadId")[0].id
    token = client.paging_token(datetime.now(UTC) + timedelta(seconds=1))
    assert _all_changes(client, token) == []
    page = client.lead_changes(token, SYNCED)
    emulator.change_by_person(lead, {"firstName": "Zed"})
    assert [c.new_values for c in _all_changes(client, page.next_token)] == [{"firstName": "Zed"}]


def test_activity_types_resolve_by_name_and_are_cached(marketo) -> None:
    emulator, client = marketo()
    assert client.activity_type_id("change data value") == 13
    assert client.activity_type_id("Merge Leads") == 32
    new_lead = next(t for t in client.activity_types() if t.name == "New Lead")
    assert "Source Type" in {a.name for a in new_lead.attributes}
    assert len(emulator.calls("/rest/v1/activities/types.json")) == 1
    with pytest.raises(MarketoFatal):
        client.activity_type_id("No Such Activity")


def test_merge_keeps_the_winners_values_and_logs_a_merge_activity(marketo) -> None:
    emulator, client = marketo()
    token = client.paging_token(_since())
    people = _people(3)
    people[1]["phone"] = "555-0101"
    people[2].update(phone="555-0202", city="Oslo")
    winner, *losers = (r.id for r in client.sync_leads(people, "dynamicsLeadId"))
    client.merge_leads(winner, losers)
    assert emulator.lead_count() == 1
    kept = emulator.lead_by("id", winner)
    assert (kept["lastName"], kept["phone"], kept["city"]) == ("L0", "555-0101", "Oslo")
    merges = client.lead_activities(token, [client.activity_type_id("Merge Leads")]).activities
    assert [(m.lead_id, m.attribute("Merge IDs")) for m in merges] == [(winner, f"{losers[0]},{losers[1]}")]
    assert set(str(merges[0].attribute("merge fields")).split(",")) == {"phone", "city"}


def test_a_person_deleted_in_marketo_shows_in_deleted_leads(marketo) -> None:
    emulator, client = marketo()
    token = client.paging_token(_since())
    lead = client.sync_leads(_people(1), "dynamicsLeadId")[0].id
    emulator.delete_by_person(lead)
    page = client.deleted_leads(token)
    assert [(d.lead_id, d.activity_type_id, d.primary_attribute_value_id) for d in page.activities] == [
        (lead, 37, lead)]
    assert emulator.lead_count() == 0 and not page.more


def test_the_emulator_refuses_malformed_activity_reads(marketo) -> None:
    emulator, client = marketo()
    token = client.paging_token(_since())
    with closing(signed_in(emulator)) as http:

        def code(path: str, **params: Any) -> str:
            return http.get(path, params=params).json()["errors"][0]["code"]

        assert code("/rest/v1/activities/leadchanges.json", nextPageToken=token) == "701"  # fields required
        assert code("/rest/v1/activities/leadchanges.json", nextPageToken=token, fields="nope") == "1006"
        assert code("/rest/v1/activities/leadchanges.json", nextPageToken="!!", fields="email") == "1003"
        assert code("/rest/v1/activities/pagingtoken.json", sinceDatetime="yesterday") == "704"
        assert code("/rest/v1/activities.json", nextPageToken=token) == "701"  # activityTypeIds required
        assert code("/rest/v1/activities.json", nextPageToken=token,
                    activityTypeIds=",".join(map(str, range(11)))) == "1003"
        losers = ",".join(map(str, range(2, 28)))
        assert http.post(f"/rest/v1/leads/1/merge.json?leadIds={losers}").json()["errors"][0]["code"] == "1080"
        repeated = http.get("/rest/v1/activities.json",
                            params=[("nextPageToken", token), ("activityTypeIds", "12"), ("activityTypeIds", "13")])
        assert repeated.json()["success"] is True
