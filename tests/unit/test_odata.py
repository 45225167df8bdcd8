"""The Dataverse emulator's `$filter` parser on its own."""

from __future__ import annotations

from typing import Any

import pytest

from sandbox.odata import FilterParser, ODataError

TYPE = "Microsoft.Dynamics.CRM.lead"
KNOWN = {"emailaddress1", "new_synctomkto", "modifiedon", "revenue", "leadid"}
ROWS: list[dict[str, Any]] = [
    {"leadid": "0a", "emailaddress1": "Ann@Contoso.com", "new_synctomkto": True,
     "modifiedon": "2025-01-02T10:00:00Z", "revenue": 10.0},
    {"leadid": "0b", "emailaddress1": "bob@fabrikam.com", "new_synctomkto": False,
     "modifiedon": "2025-01-03T10:00:00Z", "revenue": None},
    {"leadid": "0c", "emailaddress1": None, "new_synctomkto": None, "modifiedon": "2025-01-04T10:00:00Z",
     "revenue": 30.0},
]


def _matching(text: str) -> list[str]:
    parser = FilterParser(text, KNOWN, TYPE)
    return [row["leadid"] for row in ROWS if parser.predicate(row)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("(new_synctomkto eq true or new_synctomkto eq null)", ["0a", "0c"]),
        ("new_synctomkto ne false", ["0a"]),  # as in Dataverse, ne never matches null
        ("emailaddress1 eq 'ann@contoso.com'", ["0a"]),
        ("contains(emailaddress1, 'FABRIKAM')", ["0b"]),
        ("startswith(emailaddress1,'ann') or endswith(emailaddress1,'.com') and revenue gt 5", ["0a"]),
        ("modifiedon ge 2025-01-03T00:00:00Z", ["0b", "0c"]),
        ("not (leadid eq '0a')", ["0b", "0c"]),
        ("revenue eq null", ["0b"]),
        # ids looked up many at a time (one set lookup), and the mixes that stay clause by clause
        ("leadid eq '0a' or leadid eq '0c' or leadid eq '0z'", ["0a", "0c"]),
        ("emailaddress1 eq 'ANN@contoso.com' or emailaddress1 eq 'Bob@Fabrikam.com'", ["0a", "0b"]),
        ("leadid eq '0a' or emailaddress1 eq 'bob@fabrikam.com'", ["0a", "0b"]),
        ("leadid eq '0a' or revenue gt 20", ["0a", "0c"]),
        ("emailaddress1 eq null or emailaddress1 eq 'bob@fabrikam.com'", ["0b", "0c"]),
    ],
)
def test_filters_select_the_matching_records(text: str, expected: list[str]) -> None:
    assert _matching(text) == expected


def test_names_are_the_properties_the_filter_reads() -> None:
    assert FilterParser("revenue gt 1 and contains(emailaddress1,'a')", KNOWN, TYPE).names == {
        "revenue", "emailaddress1"}


def test_an_unknown_property_is_dataverses_400() -> None:
    with pytest.raises(ODataError) as raised:
        FilterParser("telephone1 eq '1'", KNOWN, TYPE)
    assert (raised.value.status, raised.value.code) == (400, "0x80060888")
    assert raised.value.message == f"Could not find a property named 'telephone1' on type '{TYPE}'."


@pytest.mark.parametrize("text", ["revenue gt", "revenue between 1", "(revenue gt 1", "revenue gt 1 )", "revenue % 2"])
def test_syntax_errors_are_400(text: str) -> None:
    with pytest.raises(ODataError) as raised:
        FilterParser(text, KNOWN, TYPE)
    assert raised.value.status == 400


@pytest.mark.parametrize(
    ("text", "membership"),
    [
        ("leadid eq '0A'", ("leadid", frozenset({"0a"}))),
        ("(leadid eq '0a' or leadid eq '0b')", ("leadid", frozenset({"0a", "0b"}))),
        ("leadid eq '0a' or emailaddress1 eq 'x'", None),
        ("leadid eq '0a' and revenue gt 1", None),
        ("revenue eq 10", None),
        ("leadid ne '0a'", None),
        ("not (leadid eq '0a')", None),
        ("leadid eq null", None),
        ("contains(leadid, '0a')", None),
    ],
)
def test_a_lookup_of_values_in_one_column_is_named_for_the_emulators_index(
    text: str, membership: tuple[str, frozenset[str]] | None,
) -> None:
    """What lets the emulator read rows from an index instead of scanning; anything else scans."""
    assert FilterParser(text, KNOWN, TYPE).membership == membership
