"""The whole conversation, played through signed requests: `/connect-dynamics` → credentials →
fields → plan → Begin sync → approval. The demo prints it; the end-to-end test checks it.

Each step waits (polling with a deadline) for what the user would see next, and hands it to
`show(title, text)` so a transcript can be printed.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bot.models import Entity
from bot.views import ids
from sandbox.driver import SlackDriver
from sandbox.polling import wait_for
from sandbox.slack import PostedMessage, SlackEmulator
from sandbox.stack import ADMIN, APPROVAL_CHANNEL, LEADS, NOTIFY_CHANNEL, SYNC_PASSWORD, SYNC_USER
from sandbox.transcript import render_message, render_view

Show = Callable[[str, str], None]
STEP_TIMEOUT = 60.0  # each step normally takes well under a second; this is for a loaded machine
SUMMARY_PREFIXES = ("Sync finished", "Sync failed", "Sync cancelled")


class StoryError(AssertionError):
    """The conversation did not go the way a user would expect."""


def _text_input(value: str) -> dict[str, Any]:
    return {"type": "plain_text_input", "value": value}


@dataclass
class Story:
    driver: SlackDriver
    slack: SlackEmulator
    dynamics_url: str
    show: Show = lambda title, text: None  # noqa: E731
    notify_email: str = "marketing-ops@example.com"
    view_id: str | None = None

    # -- helpers -------------------------------------------------------------------------------------
    def _view(self) -> dict[str, Any]:
        return self.slack.view(self.view_id)

    def _wait_view(self, callback_id: str, what: str, ready: Callable[[dict], bool] = lambda v: True) -> dict:
        view = wait_for(
            lambda: (v := self._view()) and v.get("callback_id") == callback_id and ready(v) and v, what, STEP_TIMEOUT)
        self.show(what, render_view(view))
        return view

    def _submit(self, values: dict[str, Any]) -> None:
        response = self.driver.view_submission(ADMIN, self._view(), values)
        if response.status != 200:
            raise StoryError(f"submission answered {response.status}: {response.text[:200]}")
        if isinstance(response.json, dict) and response.json.get("response_action") == "errors":
            raise StoryError(f"the form was refused: {response.json.get('errors')}")

    # -- the steps ----------------------------------------------------------------------------------------
    def open_step1(self) -> None:
        response = self.driver.command(ADMIN)
        if response.status != 200:
            raise StoryError(f"/connect-dynamics answered {response.status}")
        call = self.slack.wait_for("views.open", timeout=30)
        self.view_id = call.response["view"]["id"]
        self.show(f"/connect-dynamics (acked in {response.elapsed * 1000:.0f} ms) opens Step 1", render_view(self._view()))

    def enter_credentials(self) -> None:
        self._submit({
            ids.USERNAME_BLOCK: {ids.USERNAME_ACTION: _text_input(SYNC_USER)},
            ids.PASSWORD_BLOCK: {ids.PASSWORD_ACTION: _text_input(SYNC_PASSWORD)},
            ids.URL_BLOCK: {ids.URL_ACTION: _text_input(self.dynamics_url)},
            ids.CLIENT_ID_BLOCK: {ids.CLIENT_ID_ACTION: _text_input("")},
            ids.CLIENT_SECRET_BLOCK: {ids.CLIENT_SECRET_ACTION: _text_input("")},
        })
        view = self._wait_view(ids.CHECKLIST_CALLBACK, "the pre-flight checklist")
        if not view.get("submit"):
            raise StoryError("the pre-flight checklist did not pass")

    def choose_fields(self, custom_fields: int = 1) -> None:
        """Marketo's defaults and `custom_fields` custom lead attributes (the plan creates a Marketo field for each)."""
        self._submit({})
        view = self._wait_view(ids.FIELDS_CALLBACK, "Step 2: fields to sync (Marketo's defaults pre-selected)")
        lead_action = ids.fields_action_id(Entity.lead)
        custom = self._search(view, lead_action, "new_")
        values = {}
        for block in view["blocks"]:
            element = block.get("element") or {}
            if element.get("type") == "multi_external_select":
                chosen = list(element.get("initial_options") or [])
                if element["action_id"] == lead_action:
                    chosen += custom[:custom_fields]
                values[block["block_id"]] = {element["action_id"]: {
                    "type": "multi_external_select", "selected_options": chosen}}
        self._submit(values)
        self._wait_view(ids.PLAN_CALLBACK, "the plan: Marketo fields to create, record counts")

    def _search(self, view: dict[str, Any], action_id: str, query: str) -> list[dict[str, Any]]:
        """Type `query` in a field search, as the user would; returns the options offered."""
        answer = self.driver.block_suggestion(ADMIN, action_id, query, view)
        options = (answer.json or {}).get("options", [])
        self.show(f"typing '{query}' in the lead field search",
                  "  " + "\n  ".join(o["text"]["text"] for o in options[:5]))
        return options

    def begin_sync(self) -> PostedMessage:
        self._submit({})
        self._wait_view(ids.ENABLE_SYNC_CALLBACK, "Step 3: enable sync, with the duplicate-email report",
                        ready=lambda v: "computing" not in json.dumps(v["blocks"]))
        self._submit({ids.NOTIFY_EMAIL_BLOCK: {ids.NOTIFY_EMAIL_ACTION: {
            "type": "email_text_input", "value": self.notify_email}}})
        self.show("after Begin sync", render_view(self._view()))
        request = wait_for(lambda: self.slack.messages(APPROVAL_CHANNEL), "the approval request", STEP_TIMEOUT)[-1]
        self.show("the approval request", render_message(f"#{APPROVAL_CHANNEL}", request.text, request.blocks))
        return request

    def approve(self, request: PostedMessage, lead: str = LEADS[0]) -> PostedMessage:
        approval_id = next(e["value"] for b in request.blocks if b.get("type") == "actions"
                           for e in b["elements"] if e["action_id"] == ids.APPROVE_ACTION)
        self.driver.block_action(lead, ids.APPROVE_ACTION, value=approval_id, message=request)
        wait_for(lambda: "Approved" in json.dumps(self.slack.message(request.channel, request.ts).blocks),
                 "the approval message to show the decision", STEP_TIMEOUT)
        decided = self.slack.message(request.channel, request.ts)
        self.show(f"@{lead} approves: the request is updated in place",
                  render_message(f"#{request.channel}", decided.text, decided.blocks))
        return wait_for(lambda: self.slack.messages(NOTIFY_CHANNEL), "the progress message", STEP_TIMEOUT)[0]

    def request_and_approve(self) -> PostedMessage:
        self.open_step1()
        self.enter_credentials()
        self.choose_fields()
        return self.approve(self.begin_sync())

    def go_live(self, timeout: float = 600.0) -> list[PostedMessage]:
        """The whole first story: requested, approved, synced; the completion summary's posts."""
        self.request_and_approve()
        return self.completion(timeout)

    def completion(self, timeout: float = 600.0) -> list[PostedMessage]:
        """Wait for the summary post in the notifications channel and show what arrived."""
        wait_for(lambda: any(p.text.startswith(SUMMARY_PREFIXES) for p in self.slack.messages(NOTIFY_CHANNEL)),
                 "the completion summary", timeout)
        posts = self.slack.messages(NOTIFY_CHANNEL)
        for post in posts:
            self.show("in the notifications channel", render_message(f"#{NOTIFY_CHANNEL}", post.text, post.blocks))
        for file in self.slack.files():
            head = file.content.decode(errors="replace").splitlines()[:4]
            self.show(f"file uploaded: {file.name}", "  " + "\n  ".join(head))
        dm = self.slack.dm_channel(ADMIN)
        for post in self.slack.messages(dm):
            self.show("DM to the requester", render_message(f"@{ADMIN}", post.text, post.blocks))
        return posts
