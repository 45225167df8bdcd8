"""LOG_FORMAT=json: one JSON object per line, with the sync's ids from its own and its started threads."""

from __future__ import annotations

import io
import json
import logging
import threading

import pytest
from pydantic import ValidationError

from bot.config import Settings
from bot.logging_setup import ContextFilter, JsonFormatter, carried, sync_context


def _capture() -> tuple[logging.Logger, io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(ContextFilter())
    logger = logging.getLogger(f"test-json-{id(stream)}")
    logger.propagate = False
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    return logger, stream


def test_json_lines_carry_the_sync_context_into_started_threads_and_not_beyond() -> None:
    logger, stream = _capture()
    logger.info("before")
    with sync_context(run_id="R1", entity="lead", team_id="T1", password="never"):
        logger.warning("in the job: %s", "batch 3")
        thread = threading.Thread(target=carried(lambda: logger.info("in a writer")))
        thread.start()
        thread.join()
        bare = threading.Thread(target=lambda: logger.info("in a thread started without the context"))
        bare.start()
        bare.join()
    logger.info("after")

    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    by_message = {line["message"]: line for line in lines}
    ids = {"run_id": "R1", "entity": "lead", "team_id": "T1"}
    assert {k: by_message["in the job: batch 3"][k] for k in ids} == ids
    assert {k: by_message["in a writer"][k] for k in ids} == ids
    assert by_message["in the job: batch 3"]["level"] == "WARNING"
    assert by_message["in the job: batch 3"]["logger"] == logger.name
    for message in ("before", "after", "in a thread started without the context"):
        assert not set(ids) & set(by_message[message]), message
    assert all("password" not in line for line in lines)
    assert all(line["time"].endswith("+00:00") for line in lines)


def test_an_exception_stays_inside_its_json_line() -> None:
    logger, stream = _capture()
    try:
        raise ValueError("boom\nsecond line")
    except ValueError:
        logger.exception("failed")
    (line,) = stream.getvalue().splitlines()
    parsed = json.loads(line)
    assert parsed["message"] == "failed" and "ValueError: boom" in parsed["exception"]


def test_log_format_is_text_or_json_and_the_metrics_port_may_be_off() -> None:
    assert Settings().LOG_FORMAT == "text" and Settings().METRICS_PORT == 9100
    assert Settings(LOG_FORMAT="json", METRICS_PORT=0).METRICS_PORT == 0
    with pytest.raises(ValidationError):
        Settings(LOG_FORMAT="xml")
