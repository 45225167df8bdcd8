"""What the requester receives when a lead rejects: the reason as text, never as a mention or link."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bot.config import Settings
from bot.container import Container
from bot.models import Approval, ApprovalStatus, Connection
from sandbox.slack import SlackEmulator
from tests.conftest import REDIS_URL

EVIL = "<!channel> <https://evil|x> & <@U1>\nsecond line <!here>"


@pytest.fixture
def slack() -> Iterator[SlackEmulator]:
    with SlackEmulator() as emulator:
        yield emulator


def test_the_reject_dm_shows_the_reason_escaped(slack: SlackEmulator, key_prefix: str, encryption_key: str) -> None:
    settings = Settings(REDIS_URL=REDIS_URL, REDIS_KEY_PREFIX=key_prefix, ENCRYPTION_KEY=encryption_key,
                        SLACK_BOT_TOKEN=slack.bot_token, SLACK_API_URL=slack.api_url)
    container = Container(settings)
    connection = Connection(team_id="T1", requester="U0REQ")
    container.store.save_connection(connection)
    approval = Approval(team_id="T1", connection_id=connection.id, requester="U0REQ", status=ApprovalStatus.rejected,
                        decided_by="U0LEAD", reason=EVIL, expires_at=1_800_000_000)
    container.approvals.effects.on_rejected(approval)
    [dm] = slack.messages(slack.dm_channel("U0REQ"))
    assert "<!channel>" not in dm.text and "<https://evil" not in dm.text and "<@U1>" not in dm.text
    assert "<!here>" not in dm.text and "<@U0LEAD>" in dm.text
    assert ">&lt;!channel&gt; &lt;https://evil|x&gt; &amp; &lt;@U1&gt;\n>second line &lt;!here&gt;" in dm.text
