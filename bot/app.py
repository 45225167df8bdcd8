"""Builds the Bolt app and registers the handlers (one listener per kind of request)."""

from __future__ import annotations

import logging

from slack_bolt import App

from bot.runtime import Runtime


def build_app(runtime: Runtime) -> App:
    """`process_before_response=True`: each listener acks and hands slow work to the background
    pool itself, so Bolt's own small listener pool never holds a thread past the ack."""
    from handlers.router import register

    app = App(
        client=runtime.services.slack,
        signing_secret=runtime.settings.secret("SLACK_SIGNING_SECRET") or "socket-mode",
        process_before_response=True,
        token_verification_enabled=False,
        logger=logging.getLogger("bolt"),
    )
    register(app, runtime)
    return app
