"""MarketoClient against the emulator over real loopback HTTP, with the limiter on real Redis."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from bot.marketo.client import MarketoClient
from bot.marketo.errors import DailyQuotaExceeded, MarketoAuthError, MarketoFatal, MarketoRetryable
from bot.marketo.limiter import SharedLimiter
from bot.models import MarketoField
from bot.store import Keys, LimiterState
from sandbox.marketo import MarketoEmulator

ID_FIELD = MarketoField(name="dynamicsLeadId", display_name="Dynamics Lead Id", data_type="string")


@pytest.fixture
def env(redis_client, key_prefix) -> Iterator[Callable[..., tuple[MarketoEmulator, MarketoClient]]]:
    """Start an emulator (knobs) and a client on a fresh limiter (limiter=..., client=... overrides)."""
    opened: list[tuple[MarketoEmulator, MarketoClient]] = []

    def make(limiter: dict[str, Any] | None = None, client: dict[str, Any] | None = None,
             **knobs: Any) -> tuple[MarketoEmulator, MarketoClient]:
        knobs = {"window_seconds": 2.0, **knobs}  # the same window as the limiter's default below
        emulator = MarketoEmulator(client_id="cid", client_secret="csecret", **knobs).start()
        limits = {"calls_per_window": 100, "window_seconds": 2.0, "max_concurrency": 5, **(limiter or {})}
        shared = SharedLimiter(LimiterState(redis_client, Keys(key_prefix)), **limits)
        options: dict[str, Any] = {"limiter": shared, **(client or {})}
        marketo = MarketoClient(emulator.url, "cid", options.pop("secret", "csecret"), **options)
        opened.append((emulator, marketo))
        return emulator, marketo

    yield make
    for emulator, marketo in opened:
        marketo.close()
        emulator.stop()


def _leads(n: int, start: int = 0, **extra: Any) -> list[dict[str, Any]]:
    return [{"dynamicsLeadId": f"guid-{i}", "email": f"p{i}@example.com", "lastName": f"L{i}", **extra}
            for i in range(start, start + n)]


def _with_id_field(marketo: MarketoClient) -> None:
    assert marketo.create_lead_fields([ID_FIELD]).created == ["dynamicsLeadId"]


def test_describe_and_field_schema_creation_is_idempotent(env) -> None:
    emulator, marketo = env()
    description = marketo.describe_leads()
    assert description.field("email").data_type == "email"
    assert description.is_searchable("email") and not description.is_searchable("dynamicsLeadId")
    wanted = [ID_FIELD, MarketoField(name="dynRating", display_name="Dyn Rating", data_type="integer"),
              MarketoField(name="dynNotes", display_name="Dyn Notes", data_type="text"),
              MarketoField(name="email", display_name="Email Address", data_type="email")]
    first = marketo.create_lead_fields(wanted)
    assert first.created == ["dynamicsLeadId", "dynRating"]
    assert first.existing == ["email"]
    assert [name for name, _ in first.skipped] == ["dynNotes"] and "dataType" in first.skipped[0][1]
    creates_before = len([c for c in emulator.calls("/rest/v1/leads/schema/fields.json") if c.method == "POST"])
    second = marketo.create_lead_fields(wanted[:2])
    assert second.created == [] and second.existing == ["dynamicsLeadId", "dynRating"]
    creates_after = len([c for c in emulator.calls("/rest/v1/leads/schema/fields.json") if c.method == "POST"])
    assert creates_after == creates_before  # nothing re-sent once it exists
    assert marketo.describe_leads().is_searchable("dynamicsLeadId")
    names = [f.name for f in marketo.list_lead_fields()]
    assert names.count("dynamicsLeadId") == 1 and "dynRating" in names


def test_sync_results_come_back_in_order_with_reasons(env) -> None:
    emulator, marketo = env()
    _with_id_field(marketo)
    records = _leads(6)
    records[1]["email"] = "zoë@example.com"
    records[3]["favouriteColour"] = "blue"
    records[4]["numberOfEmployees"] = "many"
    del records[5]["dynamicsLeadId"]
    results = marketo.sync_leads(records, "dynamicsLeadId")
    assert [r.status for r in results] == ["created", "skipped", "created", "skipped", "skipped", "skipped"]
    assert [r.reasons[0].code for r in results if r.status == "skipped"] == ["1003", "1006", "1001", "1003"]
    again = marketo.sync_leads([records[0] | {"firstName": "Ann"}, records[2]], "dynamicsLeadId")
    assert [r.status for r in again] == ["updated", "updated"] and again[0].id == results[0].id
    assert emulator.lead_by("dynamicsLeadId", "guid-0")["firstName"] == "Ann"


def test_batches_never_exceed_300_records_or_1mb(env) -> None:
    emulator, marketo = env()
    _with_id_field(marketo)
    small = marketo.sync_leads(_leads(650), "dynamicsLeadId")
    assert emulator.max_batch_size_seen == 300
    bulky = _leads(400, start=1000, address="x" * 6_000)  # ~2.4 MB in all
    oversize = {"dynamicsLeadId": "huge", "address": "y" * 29_000, "unsubscribedReason": "z" * 29_000}
    results = marketo.sync_leads([*bulky[:200], {**oversize}, *bulky[200:]], "dynamicsLeadId")
    assert all(r.status == "created" for r in small)
    assert [r.status for r in results] == ["created"] * 401  # the 58 KB record fits a call of its own
    assert emulator.max_batch_size_seen <= 300 and emulator.max_body_bytes_seen <= 1_000_000
    assert not [c for c in emulator.calls() if c.code == "413"]
    assert emulator.lead_count() == 1051  # the oversized record fits one call on its own


def test_a_record_too_big_for_any_call_is_skipped_locally(env) -> None:
    emulator, marketo = env()
    _with_id_field(marketo)
    oversize = {"dynamicsLeadId": "huge", "lastName": "é" * 600_000}
    results = marketo.sync_leads([_leads(1)[0], oversize, _leads(1, start=1)[0]], "dynamicsLeadId")
    assert [r.status for r in results] == ["created", "skipped", "created"]
    assert results[1].reasons[0].code == "413"
    assert emulator.max_body_bytes_seen <= 1_000_000


def test_token_expiry_mid_run_is_invisible(env) -> None:
    emulator, marketo = env(token_lifetime=0.4, client={"batch_size": 5})
    _with_id_field(marketo)
    deadline, batch = time.monotonic() + 60, 0
    with ThreadPoolExecutor(4) as pool:
        while emulator.tokens_issued < 3 and time.monotonic() < deadline:  # however slow the machine
            chunks = [_leads(5, start=(batch + k) * 5) for k in range(4)]
            for results in pool.map(lambda c: marketo.sync_leads(c, "dynamicsLeadId"), chunks):
                assert all(r.status == "created" for r in results)
            batch += 4
    assert emulator.lead_count() == batch * 5
    assert emulator.tokens_issued >= 3  # the run outlived several tokens


def test_forced_expiry_gets_one_fresh_token(env) -> None:
    emulator, marketo = env()
    marketo.describe_leads()
    emulator.expire_tokens()
    marketo.describe_leads()
    codes = [c.code for c in emulator.calls("/rest/v1/leads/describe2.json")]
    assert codes == [None, "602", None]


def test_rate_and_concurrency_storms_slow_down_but_lose_nothing(env) -> None:
    # The client's limiter is looser than the emulator, as when another integration shares the subscription.
    emulator, marketo = env(calls_per_window=8, window_seconds=0.5, max_concurrency=2, latency=0.02,
                            limiter={"calls_per_window": 40, "window_seconds": 0.5, "max_concurrency": 6},
                            client={"batch_size": 10, "max_retries": 60})
    _with_id_field(marketo)
    chunks = [_leads(10, start=k * 10) for k in range(12)]
    with ThreadPoolExecutor(6) as pool:
        outcomes = list(pool.map(lambda c: marketo.sync_leads(c, "dynamicsLeadId"), chunks))
    assert all(r.status == "created" for results in outcomes for r in results)
    assert emulator.lead_count() == 120
    codes = {c.code for c in emulator.calls("/rest/v1/leads.json")}
    assert {"606", "615"} <= codes


def test_injected_606_pushes_everyone_back_through_the_limiter(env) -> None:
    emulator, marketo = env(limiter={"window_seconds": 0.3})
    marketo.describe_leads()
    emulator.fail_next(2, "606")
    started = time.monotonic()
    marketo.describe_leads()
    assert time.monotonic() - started >= 0.55  # two backoffs of one window each
    assert [c.code for c in emulator.calls("/rest/v1/leads/describe2.json")] == [None, "606", "606", None]


def test_transient_errors_are_retried_with_backoff(env) -> None:
    delays: list[float] = []
    emulator, marketo = env(client={"sleep": delays.append})
    emulator.fail_next(1, 502)
    emulator.fail_next(1, "611")
    emulator.fail_next(1, "713")
    assert marketo.describe_leads().fields
    assert len(delays) == 3 and delays[0] < delays[2]
    assert marketo.calls_made == 4


def test_retries_give_up_after_max_retries(env) -> None:
    emulator, marketo = env(client={"sleep": lambda _: None, "max_retries": 2})
    emulator.fail_next(5, "604")
    with pytest.raises(MarketoRetryable) as info:
        marketo.describe_leads()
    assert info.value.code == "604" and marketo.calls_made == 3


def test_fatal_errors_are_not_retried(env) -> None:
    emulator, marketo = env()
    emulator.fail_next(1, "603")
    with pytest.raises(MarketoFatal) as info:
        marketo.describe_leads()
    assert info.value.code == "603" and "role" in info.value.user_message
    assert marketo.calls_made == 1


def test_daily_quota_raises_and_is_counted(env) -> None:
    emulator, marketo = env(daily_quota=2)
    marketo.describe_leads()
    marketo.describe_leads()
    with pytest.raises(DailyQuotaExceeded) as info:
        marketo.describe_leads()
    assert "midnight CST" in info.value.user_message
    assert marketo.limiter.calls_today() == 3


def test_the_daily_quota_is_reserved_with_the_slot_so_no_thread_overshoots(env) -> None:
    emulator, marketo = env(latency=0.05, limiter={"max_concurrency": 2}, client={"daily_quota": 5})
    def call(_: int) -> str:
        try:
            marketo.describe_leads()
        except DailyQuotaExceeded:
            return "quota"
        return "sent"

    with ThreadPoolExecutor(20) as pool:
        outcomes = list(pool.map(call, range(20)))
    assert outcomes.count("sent") == 5 and outcomes.count("quota") == 15
    assert len(emulator.calls("/rest/v1/leads/describe2.json")) == 5
    assert marketo.limiter.calls_today() == 5


def test_a_call_marketo_does_not_count_gives_its_quota_unit_back(env) -> None:
    emulator, marketo = env(client={"daily_quota": 5})
    marketo.describe_leads()
    emulator.fail_next(1, "611")  # system error: retried, and not counted against the quota (C5)
    marketo.describe_leads()
    assert marketo.calls_made == 3 and marketo.limiter.calls_today() == 2


def test_bad_credentials_raise_auth_error_without_the_secret(env) -> None:
    _, marketo = env(client={"secret": "s3cr3t-value"})
    with pytest.raises(MarketoAuthError) as info:
        marketo.describe_leads()
    assert "s3cr3t-value" not in str(info.value) and "s3cr3t-value" not in info.value.user_message


def test_unreachable_instance_is_a_retryable_connection_error(redis_client) -> None:
    marketo = MarketoClient("http://127.0.0.1:9", "cid", "csecret", sleep=lambda _: None, max_retries=1)
    with pytest.raises(MarketoRetryable) as info:
        marketo.describe_leads()
    assert "127.0.0.1:9" in info.value.user_message


def test_token_is_shared_through_redis_encrypted(env, store, redis_client) -> None:
    emulator, first = env(client={"token_cache": store.marketo_token("https://mkto.example", "cid")})
    second = MarketoClient(emulator.url, "cid", "csecret", token_cache=store.marketo_token("https://mkto.example", "cid"))
    first.describe_leads()
    second.describe_leads()
    second.close()
    assert len(emulator.calls("/identity/oauth/token")) == 1
    (key,) = redis_client.scan_iter(match=f"{store.prefix}:global:marketo:token:*")
    assert redis_client.ttl(key) > 3000
    sealed = redis_client.get(key)
    assert first._token is not None and first._token.access_token.encode() not in sealed
    assert first._token.access_token in store.marketo_token("https://mkto.example", "cid").load()


def test_get_leads_pages_and_long_filters(env) -> None:
    emulator, marketo = env()
    _with_id_field(marketo)
    marketo.sync_leads(_leads(450), "dynamicsLeadId")
    ids = [f"guid-{i}" for i in range(450)] + ["guid-missing"]
    found = marketo.get_leads("dynamicsLeadId", ids, ["dynamicsLeadId", "email"])
    assert sorted(r["dynamicsLeadId"] for r in found) == sorted(ids[:450])
    assert found[0].keys() == {"id", "dynamicsLeadId", "email"}
    methods = {c.method for c in emulator.calls("/rest/v1/leads.json") if c.body_bytes == 0 or c.method == "POST"}
    assert "POST" in methods  # 300 GUIDs make a URL over 8 KB: sent as POST with _method=GET


def test_companies_upsert_in_order(env) -> None:
    emulator, marketo = env()
    records = [{"externalCompanyId": "acc-1", "company": "Acme"}, {"company": "no id"},
               {"externalCompanyId": "acc-1", "industry": "Retail"}]
    results = marketo.sync_companies(records)
    assert [r.status for r in results] == ["created", "skipped", "updated"]
    assert emulator.companies()[0]["industry"] == "Retail"


def test_configured_daily_quota_stops_calls_before_marketo_does(env) -> None:
    emulator, marketo = env(client={"daily_quota": 2})
    marketo.describe_leads()
    marketo.describe_leads()
    calls_before = len(emulator.calls())
    with pytest.raises(DailyQuotaExceeded) as info:
        marketo.describe_leads()
    assert "MARKETO_DAILY_QUOTA" in str(info.value)
    assert len(emulator.calls()) == calls_before  # nothing was sent
