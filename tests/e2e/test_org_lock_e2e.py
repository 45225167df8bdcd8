"""Approval locks the Marketo instance to the org that WhoAmI named in Step 1, end to end."""

from __future__ import annotations

import pytest

from bot.crypto import SecretBox
from bot.marketo.instance import instance_id
from bot.store import Store
from sandbox.driver import SlackDriver
from sandbox.stack import LEADS, Stack
from tests.e2e.test_approvals_e2e import TEAM, assert_one_run_started, click, connection, request_approval

pytestmark = pytest.mark.e2e


@pytest.fixture
def stack_options() -> dict:
    return {"leads": 40, "contacts": 20, "accounts": 10}


def test_approval_locks_the_marketo_instance_to_the_org(driver: SlackDriver, stack: Stack, store: Store) -> None:
    request, _ = request_approval(driver, stack)
    assert connection(store).organization_id == stack.dynamics.organization_id
    click(driver, LEADS[0], request)
    assert_one_run_started(store, stack)

    instance = Store(store.redis, SecretBox(stack.encryption_key), prefix=store.prefix,
                     marketo_instance=instance_id(stack.marketo.url))
    [lock] = instance.dynamics_locks("T0OTHER")
    assert (lock.organization_id, lock.url, lock.team_id, lock.connection_id) == (
        stack.dynamics.organization_id, stack.dynamics.url, TEAM, connection(store).id)
