"""After-ack work yields to the acks of a burst (`AckGate`), but never for longer than `max_defer`."""

from __future__ import annotations

import threading
import time
from concurrent.futures import TimeoutError as FutureTimeout

import pytest

from bot.background import AckGate, Background


@pytest.fixture
def ran() -> threading.Event:
    return threading.Event()


def test_work_waits_for_the_acks_in_flight_then_runs(ran: threading.Event) -> None:
    gate = AckGate(settle=0.01)
    background = Background(gate=gate, max_defer=30)
    try:
        with gate.acking():
            work = background.submit(ran.set)
            with pytest.raises(FutureTimeout):
                work.result(timeout=0.3)
            assert not ran.is_set()
        work.result(timeout=10)
        assert ran.is_set()
    finally:
        background.shutdown()


def test_work_is_deferred_at_most_max_defer_under_acks_that_never_stop(ran: threading.Event) -> None:
    gate = AckGate(settle=0.01)
    background = Background(gate=gate, max_defer=0.05)
    try:
        with gate.acking():
            background.submit(ran.set).result(timeout=10)
            assert ran.is_set()
    finally:
        background.shutdown()


def test_quiet_means_no_ack_for_the_settle_time() -> None:
    gate = AckGate(settle=0.2)
    assert gate.wait_quiet(0)  # never acked anything: quiet at once
    with gate.acking():
        assert not gate.wait_quiet(0.01)
    acked = time.monotonic()
    assert not gate.wait_quiet(0)  # just acked: a burst may go on
    assert gate.wait_quiet(10)
    assert time.monotonic() - acked >= 0.2


def test_the_gate_counts_each_request_until_it_is_acked() -> None:
    gate = AckGate(settle=0)
    with gate.acking(), gate.acking():
        pass
    with gate.acking():
        assert not gate.wait_quiet(0.01)
    assert gate.wait_quiet(1)
