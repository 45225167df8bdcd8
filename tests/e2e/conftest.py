"""End-to-end fixtures: the emulators, and the bot's real processes pointed at them and real Redis."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from sandbox.driver import SlackDriver
from sandbox.stack import SIGNING_SECRET, Stack, build_stack
from tests.conftest import REDIS_URL
from tests.support.processes import BotProcess, WebProcess


@pytest.fixture
def stack_options() -> dict:
    return {}


@pytest.fixture
def stack(stack_options: dict) -> Iterator[Stack]:
    with build_stack(**stack_options) as running:
        yield running


@pytest.fixture
def bot_env(stack: Stack, key_prefix: str) -> dict[str, str]:
    return stack.env(REDIS_URL=REDIS_URL, REDIS_KEY_PREFIX=key_prefix)


@pytest.fixture
def web(bot_env: dict[str, str], request: pytest.FixtureRequest) -> Iterator[WebProcess]:
    process = WebProcess(bot_env).start()
    yield process
    if getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed:
        print(f"--- serve log ---\n{process.output()}")
    process.stop()


@pytest.fixture
def worker(bot_env: dict[str, str], request: pytest.FixtureRequest) -> Iterator[BotProcess]:
    process = BotProcess("worker", bot_env).start()
    yield process
    if getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed:
        print(f"--- worker log ---\n{process.output()}")
    process.stop()


@pytest.fixture
def driver(web: WebProcess, stack: Stack) -> Iterator[SlackDriver]:
    with SlackDriver(web.url, SIGNING_SECRET, emulator=stack.slack) as slack_driver:
        yield slack_driver


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):  # noqa: ANN201
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)
