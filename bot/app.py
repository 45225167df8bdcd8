"""Builds the Bolt app and registers the handlers (one listener per kind of request)."""

from __future__ import annotations

import logging

from slack_bolt import App

from bot.container import Container


def build_app(container: Container) -> App:
    """`process_before_response=True`: each listener acks and hands slow work to the background
    pool itself, so Bolt's own small listener pool never holds a thread past the ack."""
    from handlers.router import register

    app = App(
        client=container.slack,
        signing_secret=container.settings.secret("SLACK_SIGNING_SECRET") or "socket-mode",
        process_before_response=True,
        token_verification_enabled=False,
        logger=logging.getLogger("bolt"),
    )
    register(app, container)
    return app
