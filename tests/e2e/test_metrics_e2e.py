"""`GET /metrics` of a real `connect-dynamics serve`: counters and ack latency move with signed Slack
requests; with `WEB_CONCURRENCY=2` every worker's counts are summed in each scrape (multiprocess mode)."""

from __future__ import annotations

import threading
from pathlib import Path

import httpx
import pytest
from prometheus_client.mmap_dict import MmapedDict
from prometheus_client.parser import text_string_to_metric_families

from sandbox.driver import SlackDriver
from sandbox.stack import ADMIN, SIGNING_SECRET
from tests.support.processes import WebProcess

pytestmark = pytest.mark.e2e


def scrape(url: str) -> dict[tuple[str, tuple], float]:
    response = httpx.get(f"{url}/metrics", headers={"Connection": "close"})
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(response.text) for s in family.samples}


def requests(samples: dict, kind: str, outcome: str) -> float:
    return samples.get(("slack_requests_total", (("kind", kind), ("outcome", outcome))), 0.0)


def test_metrics_move_with_signed_requests(driver: SlackDriver, web: WebProcess) -> None:
    before = scrape(web.url)
    for _ in range(3):
        assert driver.command(ADMIN, text="help").status == 200
    assert driver.raw(b"token=x", {"Content-Type": "application/x-www-form-urlencoded"}).status == 401

    after = scrape(web.url)
    assert requests(after, "command", "ok") - requests(before, "command", "ok") == 3
    assert requests(after, "rejected", "rejected") - requests(before, "rejected", "rejected") == 1
    acks = ("slack_ack_seconds_count", (("kind", "command"),))
    assert after[acks] - before.get(acks, 0.0) == 3
    assert 0 < after[("slack_ack_seconds_sum", (("kind", "command"),))] < 3 * 3.0
    assert after[("sync_queue_depth", ())] == 0
    assert 0 <= after[("marketo_quota_left", ())] <= 50_000


def _pids_counting_requests(directory: Path) -> set[str]:
    """The web workers whose own sample file holds a Slack request count."""
    pids = set()
    for path in directory.glob("counter_*.db"):
        for key, value, _timestamp, _pos in MmapedDict.read_all_values_from_file(str(path)):
            if '"slack_requests_total"' in key and value > 0:
                pids.add(path.stem.removeprefix("counter_"))
    return pids


def test_two_web_workers_are_summed_in_every_scrape(bot_env: dict[str, str], tmp_path: Path) -> None:
    (tmp_path / "counter_99999.db").write_bytes(b"stale samples of an earlier run")
    web = WebProcess({**bot_env, "WEB_CONCURRENCY": "2", "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}).start()
    try:
        assert not (tmp_path / "counter_99999.db").exists()  # the CLI emptied the directory first
        sent = 0
        lock = threading.Lock()

        def send_some() -> None:
            nonlocal sent
            for _ in range(5):  # a connection of its own for each request: the kernel spreads them
                with SlackDriver(web.url, SIGNING_SECRET) as driver:
                    assert driver.command(ADMIN, text="help").status == 200
                with lock:
                    sent += 1

        for _ in range(20):  # until both workers have served some (bounded)
            threads = [threading.Thread(target=send_some) for _ in range(4)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            if len(_pids_counting_requests(tmp_path)) >= 2:
                break
        assert len(_pids_counting_requests(tmp_path)) == 2, web.output()
        for _ in range(6):  # each scrape lands on either worker and reports both
            assert requests(scrape(web.url), "command", "ok") == sent
    finally:
        web.stop()
