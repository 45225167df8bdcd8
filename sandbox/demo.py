"""`connect-dynamics demo`: the whole flow in one process against the built-in emulators.

No Slack workspace and no Redis server: the emulators stand in for Entra ID + Dataverse, Marketo
and Slack; the embedded store (fakeredis) stands in for Redis; a local SMTP server receives the
completion email. The web app is the real one (signed requests over loopback HTTP), and the sync
runs in a real RQ worker. It prints every modal and message a user would see, then checks
Marketo's contents against Dynamics field by field.
"""

from __future__ import annotations

import sys
import time

import fakeredis

from bot.config import Settings
from bot.container import Container
from sandbox.driver import SlackDriver
from sandbox.dynamics import DynamicsEmulator
from sandbox.polling import wait_for
from sandbox.server import ServerThread
from sandbox.smtp import smtp_server
from sandbox.stack import SIGNING_SECRET, build_stack
from sandbox.story import Story

RULE = "═" * 96
# The store is an in-process fakeredis server whose client is handed to each `Container`; this URL only
# satisfies the settings that name REDIS_URL as required, nothing connects to it.
EMBEDDED_REDIS_URL = "fakeredis://"


def _show(title: str, text: str) -> None:
    print(f"\n▶ {title}\n{text}", flush=True)


def run_demo(leads: int = 1200, contacts: int = 600, accounts: int = 150) -> int:
    from bot.app import build_app
    from bot.web import create_web_app
    from bot.worker import run_worker
    from sandbox.verify import linked_contact, one_person, verify_sync

    print(RULE)
    print("connect-dynamics demo — Dynamics 365 → Marketo, from Slack, against the built-in emulators")
    print(f"Dynamics holds {leads} leads, {contacts} contacts, {accounts} accounts. Nothing leaves this machine.")
    print(RULE, flush=True)
    started = time.monotonic()
    with build_stack(leads=leads, contacts=contacts, accounts=accounts) as stack, smtp_server() as (smtp_url, inbox):
        env = stack.env(REDIS_URL=EMBEDDED_REDIS_URL, PROGRESS_UPDATE_SECONDS=1, SMTP_URL=smtp_url)
        settings = Settings(**env)
        store = fakeredis.FakeServer()
        # Two containers, as the web and worker processes of a deployment each build their own.
        container = Container(settings, redis_client=fakeredis.FakeRedis(server=store))
        web = ServerThread(create_web_app(build_app(container), container)).start()
        try:
            lead_id, contact_id = qualify_a_lead(stack.dynamics)
            _show("in Dynamics, a salesperson qualifies a lead", f"  lead {lead_id} → new contact {contact_id}")
            with SlackDriver(web.url, SIGNING_SECRET, emulator=stack.slack) as driver:
                story = Story(driver, stack.slack, stack.dynamics.url, show=_show)
                story.request_and_approve()
                queue = container.queue
                wait_for(lambda: queue.count > 0, "the sync jobs to be enqueued")
                _show("a worker picks up the sync", f"  {queue.count} jobs queued (one per entity); running them now…")
                run_worker(Container(settings, redis_client=fakeredis.FakeRedis(server=store)), burst=True)
                story.completion(timeout=120)
        finally:
            web.stop()
        for email in inbox.messages[:1]:
            body = email.get_body(("plain",)).get_content().strip()
            _show(f"email to {email['To']}: {email['Subject']}", "  " + body.replace("\n", "\n  "))
        _show("a contact in Marketo, with its company and owner from Dynamics", linked_contact(stack.marketo))
        connection = container.store.active_connection(stack.slack.team_id)
        report = verify_sync(stack.dynamics, stack.marketo, connection.plan)
        joined, person_line = one_person(stack.marketo, lead_id, contact_id)
    print()
    print(RULE)
    print(report.describe())
    print(person_line)
    print(f"demo finished in {time.monotonic() - started:.1f} s")
    print(RULE)
    return 0 if report.ok and joined else 1


def qualify_a_lead(dynamics: DynamicsEmulator) -> tuple[str, str]:
    """Qualify the first lead that passes the sync filter (QualifyLead in the emulator): (lead id, contact id)."""
    lead_id = next(dynamics.expected_records("lead", []))["leadid"]
    index = dynamics.index_of("lead", lead_id)
    assert index is not None
    return lead_id, dynamics.qualify_lead(index)


if __name__ == "__main__":
    sys.exit(run_demo())
