"""Shared fixtures: a client signed in to a Dataverse client test's `emulator` (the module defines its knobs), and
Dynamics and Marketo emulators started with per-test knobs."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import partial
from typing import Any, TypeVar

import pytest

from bot.dynamics.client import DataverseClient
from sandbox.dynamics import DynamicsEmulator
from sandbox.marketo import MarketoEmulator
from tests.support.dataverse import Sleeps, sync_user_client
from tests.support.marketo import CLIENT_ID, CLIENT_SECRET

E = TypeVar("E", DynamicsEmulator, MarketoEmulator)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def client(emulator: DynamicsEmulator, sleeps: Sleeps) -> Iterator[DataverseClient]:
    """A client signed in as the sync user on the module's `emulator`."""
    with sync_user_client(emulator, sleeps) as dv:
        yield dv


def _starter(emulator: Callable[..., E]) -> Iterator[Callable[..., E]]:
    started: list[E] = []

    def make(**knobs: Any) -> E:
        started.append(emulator(**knobs).start())
        return started[-1]

    yield make
    for each in started:
        each.stop()


@pytest.fixture
def start_dynamics() -> Iterator[Callable[..., DynamicsEmulator]]:
    """Starts Dataverse emulators (with their Entra ID) with the given knobs; stops them after the test."""
    yield from _starter(DynamicsEmulator)


@pytest.fixture
def start_marketo() -> Iterator[Callable[..., MarketoEmulator]]:
    """Starts Marketo emulators with the given knobs; stops them after the test."""
    yield from _starter(partial(MarketoEmulator, client_id=CLIENT_ID, client_secret=CLIENT_SECRET))
