"""`serve`'s metrics directory for several uvicorn workers: made (or emptied) before they start."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bot.cli import MULTIPROC_ENV, multiprocess_metrics
from bot.config import Settings


def test_several_workers_get_a_temporary_directory_removed_at_the_end(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(MULTIPROC_ENV, "")  # unset, and restored after the test (the CLI sets it)
    with multiprocess_metrics(Settings(WEB_CONCURRENCY=2)):
        path = Path(os.environ[MULTIPROC_ENV])
        assert path.is_dir()
    assert not path.exists()


def test_a_given_directory_is_emptied_of_old_samples_and_kept(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(MULTIPROC_ENV, str(tmp_path))
    (tmp_path / "counter_123.db").write_bytes(b"old")
    (tmp_path / "notes.txt").write_text("not ours")
    with multiprocess_metrics(Settings(WEB_CONCURRENCY=1)):
        assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]
    assert tmp_path.is_dir()


def test_one_worker_without_a_directory_stays_in_single_process_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(MULTIPROC_ENV, "")
    with multiprocess_metrics(Settings(WEB_CONCURRENCY=1)):
        assert not os.environ[MULTIPROC_ENV]
