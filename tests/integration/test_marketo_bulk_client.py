"""MarketoClient's bulk import calls against the emulator over loopback, with the limiter on real Redis."""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.marketo.client import MarketoClient
from bot.marketo.errors import ImportTooLarge, TooManyImports
from bot.marketo.limiter import SharedLimiter
from bot.marketo.models import ImportStatus
from bot.models import MarketoField
from bot.store import Keys, LimiterState
from sandbox.marketo import MarketoEmulator

ID_FIELD = MarketoField(name="dynamicsLeadId", display_name="Dynamics Lead Id", data_type="string")


@pytest.fixture
def emulator() -> Iterator[MarketoEmulator]:
    started = MarketoEmulator(client_id="cid", client_secret="csecret", window_seconds=2.0, import_rate=2000).start()
    yield started
    started.stop()


@pytest.fixture
def pauses() -> list[float]:
    return []


@pytest.fixture
def marketo(emulator, redis_client, key_prefix, pauses) -> Iterator[MarketoClient]:
    limiter = SharedLimiter(LimiterState(redis_client, Keys(key_prefix)), 100, 2.0, 5)
    client = MarketoClient(emulator.url, "cid", "csecret", limiter=limiter, sleep=pauses.append)
    client.create_lead_fields([ID_FIELD])
    yield client
    client.close()


def _file(tmp_path: Path, rows: list[list[str]], name: str = "part.csv") -> str:
    path = tmp_path / name
    with path.open("w", newline="", encoding="utf-8") as out:
        csv.writer(out).writerows(rows)
    return str(path)


def _finished(marketo: MarketoClient, batch_id: int) -> ImportStatus:
    deadline = time.monotonic() + 10
    while not (status := marketo.import_status(batch_id)).finished:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    return status


def test_upload_status_and_failure_file_by_the_dynamics_id(marketo, emulator, tmp_path) -> None:
    path = _file(tmp_path, [["dynamicsLeadId", "email", "leadScore"], ["g1", "a@x.com", "3"],
                            ["g2", "b@x.com", "three"], ["", "c@x.com", "1"]])
    job = marketo.import_leads(path, "dynamicsLeadId")
    assert job.status == "Queued"
    status = _finished(marketo, job.batch_id)
    assert (status.status, status.processed, status.failed, status.warnings) == ("Complete", 3, 2, 0)
    rows = list(csv.reader(io.StringIO(marketo.import_failures(job.batch_id).decode())))
    assert rows[0][-1] == "Import Failure Reason" and [r[0] for r in rows[1:]] == ["g2", ""]
    assert list(csv.reader(io.StringIO(marketo.import_warnings(job.batch_id).decode()))) == [
        ["dynamicsLeadId", "email", "leadScore", "Import Warning Reason"]]
    assert emulator.lead_by("dynamicsLeadId", "g1")["leadScore"] == 3
    assert marketo.calls_made >= 5  # every bulk call is counted like a REST call


def test_a_full_queue_is_waited_out_and_then_reported(marketo, emulator, tmp_path, pauses) -> None:
    path = _file(tmp_path, [["dynamicsLeadId"], ["g1"]])
    emulator.fail_next(2, "1016", "/bulk/v1/leads.json")
    assert marketo.import_leads(path, "dynamicsLeadId").status == "Queued"
    assert pauses == [5.0, 10.0]
    emulator.fail_next(5, "1016", "/bulk/v1/leads.json")
    with pytest.raises(TooManyImports) as refused:
        marketo.import_leads(path, "dynamicsLeadId", queue_wait=20)
    assert "queue" in refused.value.user_message


def test_a_file_of_ten_megabytes_is_a_clear_error(marketo, tmp_path) -> None:
    path = tmp_path / "big.csv"
    path.write_bytes(b"dynamicsLeadId\n" + b"g" * 10_000_000)
    with pytest.raises(ImportTooLarge) as refused:
        marketo.import_leads(str(path), "dynamicsLeadId")
    assert "10 MB" in refused.value.user_message
