"""The web process's probes over loopback HTTP, and the Redis side of the worker's heartbeat.

Liveness never depends on Redis; readiness does, and says why it is not ready."""

from __future__ import annotations

import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx
import pytest

from bot import probes
from bot.app import build_app
from bot.config import Settings
from bot.container import Container
from bot.store import Health, Store
from bot.web import create_web_app
from sandbox.server import ServerThread, free_port
from tests.conftest import REDIS_URL


def _settings(key_prefix: str, encryption_key: str, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "SLACK_BOT_TOKEN": "xoxb-probe", "SLACK_SIGNING_SECRET": "probe-secret", "REDIS_URL": REDIS_URL,
        "REDIS_KEY_PREFIX": key_prefix, "ENCRYPTION_KEY": encryption_key,
        "MARKETO_BASE_URL": "https://123-ABC-456.mktorest.com", "MARKETO_CLIENT_ID": "probe-client",
        "MARKETO_CLIENT_SECRET": "probe-secret-value",
    }
    return Settings(**{**values, **overrides})  # type: ignore[arg-type]


@pytest.fixture
def serve(key_prefix: str, encryption_key: str) -> Iterator:
    """Starts the web app for some settings over loopback; yields a function from settings to its URL."""
    servers: list[ServerThread] = []

    def start(**overrides: object) -> str:
        container = Container(_settings(key_prefix, encryption_key, **overrides))
        server = ServerThread(create_web_app(build_app(container), container)).start()
        servers.append(server)
        return server.url

    yield start
    for server in servers:
        server.stop()


def test_with_redis_and_settings_every_probe_answers_200(serve) -> None:
    url = serve()
    assert httpx.get(f"{url}/livez", timeout=5).json() == {"ok": True}
    for path in ("/readyz", "/healthz"):
        response = httpx.get(f"{url}{path}", timeout=5)
        assert response.status_code == 200, path
        assert response.json() == {"ok": True, "redis": "ok", "settings": "ok"}


def test_redis_down_fails_readiness_and_not_liveness(serve) -> None:
    url = serve(REDIS_URL=f"redis://127.0.0.1:{free_port()}/0")
    assert httpx.get(f"{url}/livez", timeout=5).status_code == 200
    started = time.monotonic()
    response = httpx.get(f"{url}/readyz", timeout=10)
    assert time.monotonic() - started < 5
    assert response.status_code == 503
    assert response.json() == {"ok": False, "redis": "unreachable: ConnectionError", "settings": "ok"}
    assert httpx.get(f"{url}/healthz", timeout=10).status_code == 503


def test_a_missing_setting_fails_readiness_naming_it_and_never_a_value(serve) -> None:
    url = serve(MARKETO_CLIENT_SECRET=None)
    response = httpx.get(f"{url}/readyz", timeout=5)
    assert response.status_code == 503
    body = response.json()
    assert body["redis"] == "ok" and body["ok"] is False
    assert body["settings"].startswith("connect-dynamics: missing setting MARKETO_CLIENT_SECRET:")
    assert "probe-secret" not in response.text and "probe-client" not in response.text


def test_a_heartbeat_is_fresh_until_its_ttl_or_a_stop(store: Store, key_prefix: str) -> None:
    health = Health.connect(REDIS_URL, key_prefix, timeout=2)
    assert not health.beating("w1")
    store.health.beat("w1", ttl_seconds=0.3)
    assert health.beating("w1") and not health.beating("w2")
    deadline = time.monotonic() + 5
    while health.beating("w1") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not health.beating("w1")
    store.health.beat("w1", ttl_seconds=30)
    store.health.stop("w1")
    assert not health.beating("w1")
    health.close()


@pytest.mark.parametrize(("command", "healthy"), [
    (b"/usr/local/bin/python\0/usr/local/bin/connect-dynamics\0serve\0", True),
    (b"/usr/local/bin/python\0/usr/local/bin/connect-dynamics\0socket\0", True),
    (b"/usr/local/bin/python\0/usr/local/bin/connect-dynamics\0worker\0", False),  # no heartbeat
    (b"sleep\0infinity\0", False),
])
def test_probe_auto_runs_the_probe_of_the_container_s_process(
        serve, key_prefix: str, tmp_path, monkeypatch: pytest.MonkeyPatch, command: bytes, healthy: bool) -> None:
    cmdline = tmp_path / "cmdline"
    cmdline.write_bytes(command)
    monkeypatch.setattr(probes, "FIRST_PROCESS", cmdline)
    monkeypatch.setenv("PORT", str(urlsplit(serve()).port))
    monkeypatch.setenv("REDIS_URL", REDIS_URL)
    monkeypatch.setenv("REDIS_KEY_PREFIX", key_prefix)
    assert probes.probe("auto")[0] is healthy
