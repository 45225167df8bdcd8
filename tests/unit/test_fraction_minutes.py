"""`INCREMENTAL_SYNC_MINUTES` takes fractions of a minute (0.1 = every 6 seconds), for fast cycles in tests."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from bot.config import Settings
from bot.worker import tick_seconds


def test_a_fraction_of_a_minute_is_accepted() -> None:
    minutes = Settings(INCREMENTAL_SYNC_MINUTES="0.1").INCREMENTAL_SYNC_MINUTES
    assert minutes * 60 == pytest.approx(6)


@pytest.mark.parametrize("minutes", ["0", "-1", "soon"])
def test_no_interval_and_no_text(minutes: str) -> None:
    with pytest.raises(ValidationError):
        Settings(INCREMENTAL_SYNC_MINUTES=minutes)


def test_the_maintenance_thread_ticks_as_often_as_cycles_are_due() -> None:
    assert tick_seconds(Settings(INCREMENTAL_SYNC_MINUTES="0.1", SYNC_SWEEP_SECONDS="10")) == pytest.approx(6)
    assert tick_seconds(Settings(INCREMENTAL_SYNC_MINUTES="5", SYNC_SWEEP_SECONDS="10")) == 10
