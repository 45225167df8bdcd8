"""What a handler receives (the typed payload, ack, ways to answer) and how a route is declared.

Handlers are thin: they parse (already done here), ack, and call one function of `bot.steps`.
Slow work goes through `later()` / `fill_modal()`, which run after the ack and turn any error
into a plain-language message in the right place (the open modal, or an ephemeral/DM).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from slack_bolt import Ack
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.models.views import View

from bot.container import Container
from bot.errors import BotError
from bot.roles import ANYONE, Permission
from bot.slack_payloads import Payload
from bot.views.common import error_modal
from bot.views.kit import Message, escape

log = logging.getLogger(__name__)

GENERIC_ERROR = "Something went wrong on our side. Nothing was changed; please try again."

P = TypeVar("P", bound=Payload)


def user_message(exc: BaseException) -> str:
    return exc.user_message if isinstance(exc, BotError) else GENERIC_ERROR


@dataclass
class Ctx(Generic[P]):
    container: Container
    ack: Ack
    client: WebClient
    payload: P

    @property
    def team_id(self) -> str:
        return self.payload.team_id

    @property
    def user_id(self) -> str:
        return self.payload.user_id

    @property
    def view_id(self) -> str | None:
        """The open modal the request came from, if any (the one to update after the ack)."""
        view = self.payload.view
        return view.root_view_id or view.id if view is not None else None

    # -- answering ---------------------------------------------------------------------------------
    def tell(self, text: str) -> None:
        """An ephemeral message where the user is (or a DM when there is no channel); `text` is plain
        and may carry outside text (an error from Dynamics or Marketo), so it is escaped here."""
        text = escape(text)
        try:
            if self.payload.channel_id:
                self.client.chat_postEphemeral(channel=self.payload.channel_id, user=self.user_id, text=text)
            else:
                self.container.notifier.direct_message(self.team_id, self.user_id, Message(text=text))
        except SlackApiError:
            log.warning("could not tell user %s: %s", self.user_id, text)

    def tell_after_ack(self, text: str) -> None:
        """`tell` on the background pool. Listeners run before Bolt sends the ack
        (process_before_response), so a Slack call made in one delays the ack itself."""
        self.container.background.submit(self.tell, text)

    def later(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        """Run `fn` after the ack; an error becomes a message in the modal (if any) or an ephemeral."""
        view_id = self.view_id

        def report(exc: BaseException) -> None:
            text = user_message(exc)
            if view_id:
                self.client.views_update(view_id=view_id, view=error_modal(text))
            else:
                self.tell(text)

        self.container.background.submit(fn, *args, on_error=report, **kwargs)

    def fill_modal(self, build: Callable[..., View], *args: Any, **kwargs: Any) -> None:
        """After the ack, build the modal's next view (the slow part of a step) and show it."""
        view_id = self.view_id

        def fill() -> None:
            view = build(*args, **kwargs)
            try:
                self.client.views_update(view_id=view_id, view=view)
            except SlackApiError as exc:
                log.info("modal closed before its next view was ready: %s", exc.response.get("error"))

        self.later(fill)

    def tell_later(self, answer: Callable[..., str | None], *args: Any, **kwargs: Any) -> None:
        """After the ack, run a step that answers in words and tell the user what it says."""

        def run() -> None:
            text = answer(*args, **kwargs)
            if text:
                self.tell(text)

        self.later(run)


@dataclass(frozen=True)
class Route(Generic[P]):
    """One command, action, view or options id: its listener and who may use it."""

    handler: Callable[[Ctx[P]], None]
    permission: Permission = ANYONE
