"""Fixtures the Dataverse client tests share: a module defines `emulator` (its knobs), these sign in to it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bot.dynamics.client import DataverseClient
from sandbox.dynamics import DynamicsEmulator
from tests.support.dataverse import Sleeps, sync_user_client


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def client(emulator: DynamicsEmulator, sleeps: Sleeps) -> Iterator[DataverseClient]:
    """A client signed in as the sync user on the module's `emulator`."""
    with sync_user_client(emulator, sleeps) as dv:
        yield dv
