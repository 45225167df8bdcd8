"""Shared fixtures: a client signed in to a Dataverse client test's `emulator` (the module defines its knobs), and
Marketo emulators started with per-test knobs."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from bot.dynamics.client import DataverseClient
from sandbox.dynamics import DynamicsEmulator
from sandbox.marketo import MarketoEmulator
from tests.support.dataverse import Sleeps, sync_user_client


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def client(emulator: DynamicsEmulator, sleeps: Sleeps) -> Iterator[DataverseClient]:
    """A client signed in as the sync user on the module's `emulator`."""
    with sync_user_client(emulator, sleeps) as dv:
        yield dv


@pytest.fixture
def start_marketo() -> Iterator[Callable[..., MarketoEmulator]]:
    """Starts Marketo emulators with the given knobs; stops them after the test."""
    started: list[MarketoEmulator] = []

    def make(**knobs: Any) -> MarketoEmulator:
        started.append(MarketoEmulator(client_id="cid", client_secret="csecret", **knobs).start())
        return started[-1]

    yield make
    for emulator in started:
        emulator.stop()
