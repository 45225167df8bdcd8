"""`make run | worker | socket` get no default REDIS_URL (only the tests, benchmarks and lint do), so a
missing one is reported by name instead of the process quietly using the test database."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
@pytest.mark.parametrize("target", ["run", "worker", "socket"])
def test_a_process_target_reports_a_missing_redis_url(target: str) -> None:
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    env.update(SLACK_BOT_TOKEN="xoxb-make", SLACK_SIGNING_SECRET="make-secret", SLACK_APP_TOKEN="xapp-make")
    # -o: the virtualenv is the one running these tests (BIN); make must not (re)build one
    result = subprocess.run(["make", "-s", "-o", ".venv/.installed", f"BIN={Path(sys.executable).parent}", target],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "connect-dynamics: missing setting REDIS_URL:" in result.stderr + result.stdout
