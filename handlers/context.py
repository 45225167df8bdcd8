"""What a handler receives: the parsed payload, ack, and ways to answer the user.

Handlers are thin: they parse (already done here), ack, and call into `bot/`. Slow
work goes through `later()`, which runs after the ack and turns any error into a
plain-language message in the right place (the open modal, or an ephemeral/DM).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel
from slack_bolt import Ack
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.errors import BotError
from bot.runtime import Runtime
from bot.slack_payloads import ActionPayload, SlackView, SlashCommand, SuggestionPayload, ViewPayload
from bot.views.kit import Message, escape

log = logging.getLogger(__name__)

GENERIC_ERROR = "Something went wrong on our side. Nothing was changed; please try again."


def user_message(exc: BaseException) -> str:
    return exc.user_message if isinstance(exc, BotError) else GENERIC_ERROR


@dataclass
class Ctx:
    runtime: Runtime
    ack: Ack
    client: WebClient
    payload: BaseModel

    @property
    def team_id(self) -> str:
        if isinstance(self.payload, SlashCommand):
            return self.payload.team_id
        return self.payload.team.id  # type: ignore[attr-defined]

    @property
    def user_id(self) -> str:
        if isinstance(self.payload, SlashCommand):
            return self.payload.user_id
        return self.payload.user.id  # type: ignore[attr-defined]

    @property
    def view(self) -> SlackView | None:
        return getattr(self.payload, "view", None)

    @property
    def view_id(self) -> str | None:
        view = self.view
        return view.root_view_id or view.id if view is not None else None

    @property
    def channel_id(self) -> str | None:
        if isinstance(self.payload, SlashCommand):
            return self.payload.channel_id or None
        if isinstance(self.payload, ActionPayload) and self.payload.channel is not None:
            return self.payload.channel.id
        return None

    @property
    def command(self) -> SlashCommand:
        assert isinstance(self.payload, SlashCommand)
        return self.payload

    @property
    def action(self) -> ActionPayload:
        assert isinstance(self.payload, ActionPayload)
        return self.payload

    @property
    def submission(self) -> ViewPayload:
        assert isinstance(self.payload, ViewPayload)
        return self.payload

    @property
    def suggestion(self) -> SuggestionPayload:
        assert isinstance(self.payload, SuggestionPayload)
        return self.payload

    # -- answering ---------------------------------------------------------------------------------
    def tell(self, text: str) -> None:
        """An ephemeral message where the user is (or a DM when there is no channel); `text` is plain
        and may carry outside text (an error from Dynamics or Marketo), so it is escaped here."""
        text = escape(text)
        try:
            if self.channel_id:
                self.client.chat_postEphemeral(channel=self.channel_id, user=self.user_id, text=text)
            else:
                self.runtime.notifier.direct_message(self.user_id, Message(text=text))
        except SlackApiError:
            log.warning("could not tell user %s: %s", self.user_id, text)

    def tell_after_ack(self, text: str) -> None:
        """`tell` on the background pool. Listeners run before Bolt sends the ack
        (process_before_response), so a Slack call made in one delays the ack itself."""
        self.runtime.background.submit(self.tell, text)

    def later(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        """Run `fn` after the ack; an error becomes a message in the modal (if any) or an ephemeral."""
        view_id = self.view_id

        def report(exc: BaseException) -> None:
            text = user_message(exc)
            if view_id:
                from bot.views.common import error_modal

                self.client.views_update(view_id=view_id, view=error_modal(text))
            else:
                self.tell(text)

        self.runtime.background.submit(fn, *args, on_error=report, **kwargs)
