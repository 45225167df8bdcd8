"""Error mapping and request splitting, without HTTP."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.bounded_text import MAX_EXTERNAL_TEXT
from bot.errors import BotError
from bot.marketo.client import chunk_records
from bot.marketo.errors import (
    DailyQuotaExceeded,
    MarketoAuthError,
    MarketoError,
    MarketoFatal,
    MarketoRetryable,
    connection_error,
    error_for,
    http_error,
)


@pytest.mark.parametrize("code", ["604", "606", "608", "611", "615", "713", "719"])
def test_retryable_codes(code: str) -> None:
    error = error_for(code, "x")
    assert isinstance(error, MarketoRetryable) and error.retryable and error.code == code


@pytest.mark.parametrize("code", ["603", "609", "610", "612", "1003", "1018"])
def test_fatal_codes(code: str) -> None:
    error = error_for(code, "x")
    assert isinstance(error, MarketoFatal) and not error.retryable
    assert isinstance(error, BotError) and error.user_message


def test_quota_error_says_what_happens_next() -> None:
    error = error_for("607", "Daily quota reached")
    assert isinstance(error, DailyQuotaExceeded) and isinstance(error, MarketoFatal)
    assert "midnight CST" in error.user_message and "Resume" in error.user_message
    assert "607" in str(error)


def test_access_denied_explains_roles_and_allowlist() -> None:
    message = error_for("603", "Access denied").user_message
    assert "role" in message and "allowlist" in message


def test_http_and_connection_errors() -> None:
    assert http_error(502, "h").retryable
    assert http_error(500, "h").retryable
    assert not http_error(413, "h").retryable
    assert "MARKETO_BASE_URL" in http_error(404, "h").user_message
    error = connection_error("mkto.example", "ConnectError")
    assert error.retryable and "mkto.example" in error.user_message


def test_auth_error_names_the_settings_and_no_secret() -> None:
    error = MarketoAuthError("Bad client credentials")
    assert isinstance(error, MarketoError)
    assert "MARKETO_CLIENT_ID" in error.user_message and "MARKETO_CLIENT_SECRET" in error.user_message
    assert str(error) == "Marketo error 401: Bad client credentials"


HEAD = b'{"action":"createOrUpdate","lookupField":"k","input":['


@settings(max_examples=60, deadline=None)
@given(sizes=st.lists(st.integers(min_value=0, max_value=400), max_size=60),
       max_records=st.integers(min_value=1, max_value=7))
def test_chunks_respect_both_limits_and_keep_order(sizes: list[int], max_records: int) -> None:
    records = [{"k": str(i), "pad": "é" * size} for i, size in enumerate(sizes)]
    max_bytes = 1000
    seen: list[int] = []
    for indexes, body in chunk_records(records, HEAD, max_records=max_records, max_bytes=max_bytes):
        seen.extend(indexes)
        if not body:  # a record too big for any request on its own
            assert len(indexes) == 1
            assert len(HEAD) + len(json.dumps(records[indexes[0]], ensure_ascii=False).encode()) + 2 > max_bytes
            continue
        assert len(body) <= max_bytes and len(indexes) <= max_records
        assert json.loads(body)["input"] == [records[i] for i in indexes]
    assert seen == list(range(len(records)))


def test_chunks_are_full_when_records_are_small() -> None:
    records = [{"k": str(i)} for i in range(700)]
    sizes = [len(indexes) for indexes, _ in chunk_records(records, HEAD)]
    assert sizes == [300, 300, 100]


def test_marketo_messages_are_bounded() -> None:
    huge = "x" * 1_000_000
    error = error_for("1003", huge)
    assert len(error.marketo_message) <= MAX_EXTERNAL_TEXT and len(str(error)) < 2 * MAX_EXTERNAL_TEXT
    assert len(connection_error("host", huge).marketo_message) <= MAX_EXTERNAL_TEXT
