"""The plan's contact-role count against the Dataverse emulator: only roles of opportunities that pass the filter."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bot.dynamics.client import DataverseClient
from bot.sync.opportunities import FROM, count_roles
from sandbox.dynamics import DynamicsEmulator

RECORDS = {"account": 5, "contact": 30, "opportunity": 120, "connection": 240}


@pytest.fixture
def emulator() -> Iterator[DynamicsEmulator]:
    em = DynamicsEmulator(records=RECORDS, sync_filter={"opportunity": "new_synctomkto"},
                          filter_false_fraction=0.6).start()
    yield em
    em.stop()


def test_the_role_count_leaves_out_roles_of_opportunities_the_filter_excludes(
        emulator: DynamicsEmulator, client: DataverseClient) -> None:
    passing = {r["opportunityid"] for r in emulator.expected_records("opportunity", [])}
    assert 0 < len(passing) < RECORDS["opportunity"] - 50  # more excluded than one counting chunk
    expected = sum(1 for c in emulator.expected_records("connection", [FROM]) if c[FROM] in passing)

    assert count_roles(client, filtered=True) == expected
    assert count_roles(client, filtered=False) == RECORDS["connection"]  # no filter: every role
