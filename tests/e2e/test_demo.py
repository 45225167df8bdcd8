"""`make demo` needs no Redis server: the whole flow runs against the emulators on the embedded store."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_demo_runs_with_no_redis_server_and_checks_marketo_field_by_field() -> None:
    env = {**os.environ, "REDIS_URL": "redis://127.0.0.1:1/0"}  # nothing listens there
    done = subprocess.run([sys.executable, "-m", "bot.cli", "demo", "--leads", "60", "--contacts", "20",
                           "--accounts", "10"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "0 missing, 0 duplicated, 0 field mismatches" in done.stdout
    assert "SYNC FINISHED" in done.stdout
    assert "the qualified lead" in done.stdout and "and its contact are one Marketo person" in done.stdout
    linked = done.stdout.split("a contact in Marketo, with its company and owner from Dynamics\n", 1)[1].splitlines()[0]
    assert " works at “" in linked and "externalCompanyId" in linked and "@contoso.com> (externalSalesPersonId" in linked
