"""Alert and recovery messages: cause and fix in plain words, outside text escaped, the renew button."""

from __future__ import annotations

import pytest

from bot.alerts import Cause, Condition
from bot.views import ids
from bot.views.alerts import alert_message, recovery_message
from tests.unit.test_views_escaping import EVIL, assert_escaped


def _buttons(message) -> list[str]:  # noqa: ANN001
    return [e["action_id"] for b in message.to_dict()["blocks"] if b["type"] == "actions" for e in b["elements"]]


@pytest.mark.parametrize("condition", list(Condition))
def test_every_alert_says_what_to_do(condition: Condition) -> None:
    message = alert_message(Cause(condition, entity="lead", failed=6, read=100, resets_at=1_800_000_000,
                                  last_ok_at=1_799_000_000, minutes=5))
    assert "What to do" in str(message.to_dict())
    assert _buttons(message) == ([ids.RENEW_CREDENTIALS_ACTION] if condition == Condition.credentials else [])


def test_credentials_alert_escapes_the_sign_in_error() -> None:
    assert_escaped(alert_message(Cause(Condition.credentials, problem=EVIL)), shown=2)


def test_access_alert_names_the_privilege() -> None:
    message = alert_message(Cause(Condition.access, privilege=EVIL))
    assert_escaped(message)


def test_quota_alert_says_when_it_resets() -> None:
    assert "resets" in str(alert_message(Cause(Condition.quota, resets_at=1_800_000_000)).to_dict())


def test_recovery_says_it_works_again() -> None:
    message = recovery_message(Cause(Condition.failure_rate, entity=EVIL), 1_800_000_000, 1_800_000_600)
    assert "again" in message.text and "10 min" in str(message.to_dict())
    assert_escaped(message)
