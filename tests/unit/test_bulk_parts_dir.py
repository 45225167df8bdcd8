"""Bulk Import parts hold personal data in the shared temporary directory: only their user may read them."""

from __future__ import annotations

import os
import shutil
import stat
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.sync.bulk import parts_dir, private_parts_dir


@pytest.fixture
def run_id() -> Iterator[str]:
    run_id = f"test-{uuid.uuid4().hex}"
    yield run_id
    shutil.rmtree(parts_dir(run_id), ignore_errors=True)


def test_every_level_of_a_parts_directory_is_this_users_alone(run_id: str) -> None:
    path = Path(private_parts_dir(run_id, "lead-0"))
    (path / "0.csv").write_text("email\nbo@example.com\n")
    assert path == Path(parts_dir(run_id)) / "lead-0"
    for level in (path, path.parent, path.parent.parent):
        assert stat.S_IMODE(level.stat().st_mode) == 0o700, level
        assert level.stat().st_uid == os.getuid()


def test_a_symlink_planted_in_the_way_is_refused(run_id: str, tmp_path: Path) -> None:
    Path(parts_dir(run_id)).parent.mkdir(parents=True, exist_ok=True)
    os.symlink(tmp_path, parts_dir(run_id))
    try:
        with pytest.raises(PermissionError):
            private_parts_dir(run_id, "lead-0")
        assert not (tmp_path / "lead-0").exists()  # nothing written through it
    finally:
        os.unlink(parts_dir(run_id))
