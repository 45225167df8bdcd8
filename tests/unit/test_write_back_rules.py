"""The write-back's rules without any service: echo filter, collapsing a page, collision decisions,
and Marketo strings converted back to Dataverse types."""

from __future__ import annotations

from typing import Any

import pytest

from bot.marketo.activities import LeadChange
from bot.models import Direction, FieldMapping, Side
from bot.sync.collisions import Outcome, collapse, decide, is_echo
from bot.sync.convert import ConversionError
from bot.sync.reverse import dynamics_as_marketo, marketo_value, reversible, same_value, to_dataverse
from bot.sync.write_back import writes_back

API_USER = "apiuser@emulator.local"


def change(lead: int, name: str, new: str | None, old: str | None = None, *, seq: int = 1,
           by_us: bool = False, request_id: str | None = None) -> LeadChange:
    attributes: list[dict[str, Any]] = [{"name": "Source", "value": "Web service API" if by_us else "Web form fillout"}]
    if request_id:
        attributes.append({"name": "request id", "value": request_id})
    item = {"marketoGUID": str(seq), "leadId": lead, "activityDate": f"2026-01-01T00:00:{seq:02d}Z",
            "activityTypeId": 13, "attributes": attributes,
            "fields": [{"name": name, "newValue": new, **({"oldValue": old} if old is not None else {})}]}
    parsed = LeadChange.model_validate(item)
    parsed.by_api_user = by_us
    return parsed


def mapping(attribute_type: str, marketo_type: str, **extra: Any) -> FieldMapping:
    return FieldMapping(source="col", read_name=extra.pop("read_name", "col"), attribute_type=attribute_type,
                        marketo_name="field", marketo_type=marketo_type, standard=False, direction=Direction.both,
                        **extra)


# -- echoes ------------------------------------------------------------------------------------------
def test_our_own_writes_are_echoes_by_request_id_or_api_user() -> None:
    assert is_echo(change(1, "firstName", "A", by_us=True))
    assert is_echo(change(1, "firstName", "A", request_id="r-1"), our_request_ids={"r-1"})
    assert not is_echo(change(1, "firstName", "A", request_id="r-2"), our_request_ids={"r-1"})
    assert not is_echo(change(1, "firstName", "A"))  # a person's form fill


def test_a_page_collapses_to_one_net_change_per_person_and_field() -> None:
    page = [change(1, "firstName", "B", "A", seq=1), change(1, "firstName", "C", "B", seq=2),
            change(2, "firstName", "X", "W", seq=3, by_us=True)]
    net = collapse(page)
    assert list(net) == [1]  # person 2 changed only through us
    first = net[1]["firstName"]
    assert (first.old, first.new, first.has_old, first.overwritten) == ("A", "C", True, False)


def test_an_echo_marks_the_change_overwritten_and_a_later_change_starts_afresh() -> None:
    overwritten = collapse([change(1, "firstName", "B", "A", seq=1), change(1, "firstName", "D", "B", seq=2, by_us=True)])
    assert overwritten[1]["firstName"].overwritten and overwritten[1]["firstName"].new == "B"
    afresh = collapse([change(1, "firstName", "B", "A", seq=1), change(1, "firstName", "D", "B", seq=2, by_us=True),
                       change(1, "firstName", "E", "D", seq=3)])
    pending = afresh[1]["firstName"]
    assert (pending.old, pending.new, pending.overwritten) == ("D", "E", False)


def test_a_missing_old_value_is_known_as_missing() -> None:
    assert not collapse([change(1, "firstName", "B")])[1]["firstName"].has_old


# -- collisions --------------------------------------------------------------------------------------
@pytest.mark.parametrize("winner", [Side.marketo, Side.dynamics])
def test_only_marketo_changed_writes_marketos_value(winner: Side) -> None:
    decision = decide("B", "A", True, dynamics="A", marketo_now="B", winner=winner, dynamics_by_us=False)
    assert decision.outcome == Outcome.apply and decision.write_dynamics and not decision.restore


def test_dynamics_already_holding_the_value_writes_nothing() -> None:
    decision = decide("B", "A", True, dynamics="B", marketo_now="B", winner=Side.marketo, dynamics_by_us=False)
    assert decision.outcome == Outcome.same and not decision.write_dynamics and not decision.collision


def test_both_changed_marketo_wins_and_puts_its_value_back_when_it_was_overwritten() -> None:
    kept = decide("M", "A", True, dynamics="D", marketo_now="M", winner=Side.marketo, dynamics_by_us=False)
    assert kept.outcome == Outcome.marketo_won and kept.write_dynamics and kept.collision and not kept.restore
    overwritten = decide("M", "A", True, dynamics="D", marketo_now="D", winner=Side.marketo, dynamics_by_us=False)
    assert overwritten.restore and overwritten.restore_marketo == "M"


def test_both_changed_dynamics_wins_and_the_person_gets_the_dynamics_value() -> None:
    decision = decide("M", "A", True, dynamics="D", marketo_now="M", winner=Side.dynamics, dynamics_by_us=False)
    assert decision.outcome == Outcome.dynamics_won and not decision.write_dynamics and decision.collision
    assert decision.restore and decision.restore_marketo == "D"
    settled = decide("M", "A", True, dynamics="D", marketo_now="D", winner=Side.dynamics, dynamics_by_us=False)
    assert not settled.restore  # the Dynamics → Marketo cycle already wrote it


def test_without_an_old_value_the_last_modifier_tells() -> None:
    assert decide("M", None, False, "D", "M", Side.dynamics, dynamics_by_us=True).outcome == Outcome.apply
    assert decide("M", None, False, "D", "M", Side.dynamics, dynamics_by_us=False).outcome == Outcome.dynamics_won


def test_numbers_compare_as_numbers() -> None:
    assert same_value(1500, 1500.0) and not same_value(1500, 1500.5) and same_value(None, None)


# -- reverse conversion -------------------------------------------------------------------------------
@pytest.mark.parametrize(("attribute_type", "marketo_type", "text", "expected"), [
    ("StringType", "string", "Ada", "Ada"),
    ("StringType", "string", "", None),
    ("MemoType", "text", "a note", "a note"),
    ("IntegerType", "integer", "42", 42),
    ("DoubleType", "float", "2.5", 2.5),
    ("MoneyType", "currency", "1604.456", 1604.46),
    ("BooleanType", "boolean", "true", True),
    ("BooleanType", "boolean", "0", False),
    ("DateTimeType", "datetime", "2026-03-01T10:00:00+01:00", "2026-03-01T09:00:00Z"),
    ("IntegerType", "integer", None, None),
])
def test_marketo_strings_become_dataverse_values(attribute_type: str, marketo_type: str, text: str | None,
                                                 expected: Any) -> None:
    assert to_dataverse(mapping(attribute_type, marketo_type), text) == expected


def test_dates_and_choices_convert_back() -> None:
    date_only = mapping("DateTimeType", "date", datetime_behavior="DateOnly")
    assert to_dataverse(date_only, "2026-01-31") == "2026-01-31"
    choice = mapping("PicklistType", "string")
    assert to_dataverse(choice, "web", {"Web": 100000004}) == 100000004
    assert to_dataverse(choice, "100000001") == 100000001
    with pytest.raises(ConversionError, match="not an option"):
        to_dataverse(choice, "Billboard", {"Web": 100000004})


def test_a_value_that_does_not_fit_is_a_conversion_error() -> None:
    with pytest.raises(ConversionError, match="col"):
        to_dataverse(mapping("IntegerType", "integer"), "forty-two")


def test_lookups_and_statuses_are_not_written_back() -> None:
    owner = mapping("OwnerType", "string", read_name="_ownerid_value")
    assert not reversible(owner) and not writes_back(owner)
    assert not reversible(mapping("StatusType", "string"))
    assert writes_back(mapping("StringType", "string"))
    assert not writes_back(mapping("StringType", "string").model_copy(update={"direction": Direction.to_marketo}))
    assert not writes_back(mapping("StringType", "string", one_way_reason="read-only in Dynamics"))


def test_values_compare_in_marketo_terms() -> None:
    money = mapping("MoneyType", "currency")
    assert same_value(marketo_value(money, "1500"), dynamics_as_marketo(money, {"col": 1500.0}))
    flag = mapping("BooleanType", "boolean")
    assert same_value(marketo_value(flag, "false"), dynamics_as_marketo(flag, {"col": False}))
    choice = mapping("PicklistType", "string")
    record = {"col": 100000004, "col@OData.Community.Display.V1.FormattedValue": "Web"}
    assert same_value(marketo_value(choice, "Web"), dynamics_as_marketo(choice, record))
