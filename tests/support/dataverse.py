"""A Dataverse client signed in as the emulator's sync user, over real TLS loopback."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from bot.config import Settings
from bot.dynamics.auth import sign_in
from bot.dynamics.client import DataverseClient
from bot.dynamics.egress import HostAllowlist
from bot.models import Credentials
from sandbox.dynamics import DynamicsEmulator


class Sleeps:
    """The client's injectable sleep: records the waits asked for and sleeps a tiny real time."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        time.sleep(min(seconds, 0.05))


@contextmanager
def sync_user_client(emulator: DynamicsEmulator, sleeps: Sleeps, page_size: int = 500) -> Iterator[DataverseClient]:
    settings = Settings(ENTRA_AUTHORITY_HOST=emulator.authority_host, CA_BUNDLE=emulator.ca_path)
    provider = sign_in(Credentials(username="sync@contoso.com", password="Passw0rd!", url=emulator.url), settings)
    with DataverseClient(emulator.url, provider, ca_bundle=emulator.ca_path, page_size=page_size, sleep=sleeps,
                         host_allowlist=HostAllowlist(["localhost"])) as client:
        yield client
