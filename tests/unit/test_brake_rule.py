"""The mass-change brake's rule and screen, without Redis or Marketo: a lookup stands for Marketo."""

from __future__ import annotations

from bot.models import BrakeStatus, Entity, EntityPlan, MassChangeHold
from bot.sync.brake import Screen, limit_for
from bot.sync.links import COMPANY_ID, linked_person
from bot.sync.opportunities import PRIMARY_CONTACT, as_sent
from bot.views.brake import brake_request_message

PLAN = EntityPlan(entity=Entity.lead, mappings=[], id_field="dynamicsLeadId")


def test_the_limit_is_the_setting_else_the_larger_of_1000_and_a_tenth() -> None:
    assert limit_for(5, 1_000_000) == 5
    assert limit_for(None, None) == 1000
    assert limit_for(None, 9_000) == 1000
    assert limit_for(None, 25_001) == 2501


def _records(ids: range, name: str = "x") -> tuple[list[dict], list[tuple[str, str | None]]]:
    return ([{"dynamicsLeadId": str(i), "firstName": name} for i in ids], [(str(i), f"{i}@example.com") for i in ids])


def _marketo(held: dict[str, dict]):  # noqa: ANN202
    """A lookup over persons Marketo holds, by id."""
    return lambda ids, fields: [held[i] for i in ids if i in held]


def test_changes_under_the_limit_are_written_at_the_end() -> None:
    screen = Screen(PLAN, 5, _marketo({}))
    records, keys = _records(range(3))
    assert screen.admit(records, keys, ["d1", "d2"]).records == []  # buffered, nothing read back
    ready = screen.finish()
    assert not screen.tripped and len(ready.records) == 3 and ready.deleted_ids == ["d1", "d2"]


def test_more_deletes_than_the_limit_trip_and_nothing_is_written() -> None:
    screen = Screen(PLAN, 5, _marketo({}))
    screen.admit([], [], [f"d{i}" for i in range(4)])
    screen.admit([], [], [f"d{i}" for i in range(4, 10)])
    assert screen.tripped and screen.deletes == 10
    assert screen.finish().deleted_ids == [] and sorted(screen.held_ids) == sorted(f"d{i}" for i in range(10))
    assert len(screen.examples) == 5 and all(e.deleted for e in screen.examples)


def test_only_changed_existing_persons_count_as_overwrites() -> None:
    existing = {str(i): {"dynamicsLeadId": str(i), "firstName": "same" if i < 4 else "old"} for i in range(8)}
    screen = Screen(PLAN, 5, _marketo(existing))
    records, keys = _records(range(12), name="same")  # 0-3 unchanged, 4-7 changed, 8-11 new
    ready = screen.admit(records, keys, [])
    assert not screen.tripped and screen.overwrites == 4
    assert {r["dynamicsLeadId"] for r in ready.records} == {"0", "1", "2", "3", "8", "9", "10", "11"}
    assert {r["dynamicsLeadId"] for r in screen.finish().records} == {"4", "5", "6", "7"}
    assert screen.examples[0].fields == ["firstName"]


def test_a_linked_persons_company_fields_are_not_counted_as_overwrites() -> None:
    """Marketo shows a linked person's company fields from its company, and the sync sends none of them."""
    existing = {str(i): {"dynamicsLeadId": str(i), "firstName": "same", COMPANY_ID: "a1", "company": "Contoso"}
                for i in range(8)}
    records, keys = _records(range(8), name="same")
    for i, record in enumerate(records):
        record.update({COMPANY_ID: "a1", "company": "Contoso Ltd (typed on the lead)",
                       "firstName": "changed" if i < 2 else "same"})
    screen = Screen(PLAN, 5, _marketo(existing), sent=lambda people: [linked_person(p) for p in people])
    ready = screen.admit(records, keys, [])
    assert screen.overwrites == 2 and [e.fields for e in screen.examples] == [["firstName"], ["firstName"]]
    assert all(r["company"].startswith("Contoso Ltd") for r in ready.records + screen.finish().records)


def test_a_decision_applies_to_the_records_it_held_only() -> None:
    decided = MassChangeHold(team_id="T", connection_id="c", entity=Entity.lead, limit=5,
                             status=BrakeStatus.discarded, decided_by="U0LEAD")
    screen = Screen(PLAN, 5, _marketo({}), decided, frozenset({"d1", "1"}))
    records, keys = _records(range(3))
    ready = screen.admit(records, keys, ["d1", "d2"])
    assert {e.id for e in ready.discarded} == {"d1", "1"} and all("<@U0LEAD>" in e.message for e in ready.discarded)
    rest = screen.finish()
    assert rest.deleted_ids == ["d2"] and {r["dynamicsLeadId"] for r in rest.records} == {"0", "2"}

    approved = decided.model_copy(update={"status": BrakeStatus.approved})
    screen = Screen(PLAN, 1, _marketo({}), approved, frozenset({"d1", "d2", "d3"}))
    assert screen.admit([], [], ["d1", "d2", "d3"]).deleted_ids == ["d1", "d2", "d3"] and not screen.tripped


def test_the_request_escapes_outside_text() -> None:
    hold = MassChangeHold(team_id="T", connection_id="c", entity=Entity.lead, limit=5, deletes=10,
                          examples=[{"id": "<!channel>", "email": "a&b@example.com", "deleted": True}])
    text = str(brake_request_message(hold).to_dict())
    assert "<!channel>" not in text and "&lt;!channel&gt;" in text and "a&amp;b@example.com" in text


def test_an_opportunity_overwrite_lists_only_the_fields_sent_to_marketo() -> None:
    """Opportunities are not read back: every field sent counts, but not what their records carry for the writer."""
    plan = EntityPlan(entity=Entity.opportunity, mappings=[], id_field="externalOpportunityId",
                      primary_contact_lookup=PRIMARY_CONTACT)
    screen = Screen(plan, 0, None, sent=as_sent)
    screen.admit([{"externalOpportunityId": "o1", "name": "A", PRIMARY_CONTACT: "c1"}], [("o1", None)], [])
    assert [e.fields for e in screen.examples] == [["externalOpportunityId", "name"]]
