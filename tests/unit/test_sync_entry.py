"""Sync jobs run with the services their worker installed, never with clients built from the environment."""

from __future__ import annotations

import pytest

from bot.sync import entry


def test_a_job_in_a_process_without_installed_services_fails_loudly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:6379/15")
    entry.install(None)
    with pytest.raises(entry.NoSyncServices, match="run_worker"):
        entry.sync_entity_job("T1", "run-1", "lead")
    with pytest.raises(entry.NoSyncServices):
        entry.incremental_entity_job("T1", "conn-1", "lead")
