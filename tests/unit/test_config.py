"""Settings: the documented names, comma lists, and one clear line for a missing setting."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from bot.config import WEB_REQUIRED, MissingSetting, Settings


def test_id_lists_are_comma_separated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ADMIN_USER_IDS", "U1, U2,,U3")
    monkeypatch.setenv("TEAM_LEAD_USER_IDS", "U9")
    settings = Settings()
    assert settings.ADMIN_USER_IDS == ["U1", "U2", "U3"]
    assert settings.TEAM_LEAD_USER_IDS == ["U9"]


def test_require_names_the_missing_setting_and_its_purpose() -> None:
    with pytest.raises(MissingSetting) as raised:
        Settings(SLACK_BOT_TOKEN="xoxb-1").require(WEB_REQUIRED)
    message = str(raised.value)
    assert "SLACK_SIGNING_SECRET" in message and "signing secret" in message
    assert "\n" not in message


def test_marketo_concurrency_never_above_ten() -> None:
    with pytest.raises(ValueError):
        Settings(MARKETO_MAX_CONCURRENCY=11)


@pytest.mark.parametrize("command", ["serve", "worker", "socket"])
def test_process_without_settings_exits_with_one_line(command: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "MARKETO_", "ENCRYPTION", "REDIS"))}
    result = subprocess.run([sys.executable, "-m", "bot.cli", command], env=env, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("connect-dynamics: missing setting SLACK_BOT_TOKEN")
    assert "Traceback" not in result.stderr


def test_a_bad_encryption_key_is_one_line() -> None:
    env = {**os.environ, "SLACK_BOT_TOKEN": "xoxb-1", "SLACK_SIGNING_SECRET": "s", "REDIS_URL": "redis://x",
           "ENCRYPTION_KEY": "not-a-key", "MARKETO_BASE_URL": "https://m", "MARKETO_CLIENT_ID": "i",
           "MARKETO_CLIENT_SECRET": "s"}
    result = subprocess.run([sys.executable, "-m", "bot.cli", "serve"], env=env, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode != 0
    assert "ENCRYPTION_KEY" in result.stderr and "Traceback" not in result.stderr
