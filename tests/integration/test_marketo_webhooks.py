"""The emulator's Call Webhook: a trigger campaign fires it on a matching change and delivers once,
with the template rendered and the custom headers, to a real receiver over loopback HTTP."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from sandbox.marketo import MarketoEmulator
from sandbox.marketo_webhooks import TriggerCampaign, WebhookDefinition
from sandbox.polling import wait_for
from sandbox.server import ServerThread
from tests.support.marketo import CLIENT_ID, CLIENT_SECRET, signed_in

TEMPLATE = ('{"id":{{lead.Id}},"email":{{lead.Email Address}},"first":{{lead.First Name}},'
            '"score":{{lead.Lead Score}}}')


@dataclass
class Receiver:
    """Records every request; answers with `status` and a non-empty body."""

    status: int = 200
    requests: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle(self, request: Request) -> PlainTextResponse:
        body = (await request.body()).decode()
        with self.lock:
            self.requests.append({"method": request.method, "query": dict(request.query_params),
                                  "headers": dict(request.headers), "body": body})
        return PlainTextResponse("ok", status_code=self.status)

    def received(self) -> list[dict[str, Any]]:
        with self.lock:
            return list(self.requests)


@pytest.fixture
def setup() -> Iterator[Callable[..., tuple[MarketoEmulator, httpx.Client, Receiver, str]]]:
    opened: list[Any] = []

    def make(status: int = 200) -> tuple[MarketoEmulator, httpx.Client, Receiver, str]:
        receiver = Receiver(status=status)
        server = ServerThread(Starlette(routes=[Route("/hook", receiver.handle, methods=["POST"])])).start()
        emulator = MarketoEmulator(client_id=CLIENT_ID, client_secret=CLIENT_SECRET).start()
        http = signed_in(emulator)
        opened.extend([http, emulator, server])
        return emulator, http, receiver, f"{server.url}/hook"

    yield make
    for item in opened:
        (item.close if isinstance(item, httpx.Client) else item.stop)()


def _sync(http: httpx.Client, record: dict[str, Any]) -> int:
    body = {"action": "createOrUpdate", "lookupField": "email", "input": [record]}
    return http.post("/rest/v1/leads.json", json=body).json()["result"][0]["id"]


def _definition(url: str) -> WebhookDefinition:
    return WebhookDefinition(name="Sync Person to Dynamics", url=url + "?lead={{lead.Id}}", template=TEMPLATE,
                             headers={"X-Webhook-Secret": "s3cret", "X-Lead-Email": "{{lead.Email Address}}"})


def test_a_persons_change_fires_the_webhook_and_an_api_change_does_not(setup) -> None:
    emulator, http, receiver, url = setup()
    emulator.add_trigger_campaign(TriggerCampaign(_definition(url), attributes=frozenset({"firstName"}),
                                                  source_is_not=frozenset({"Web service API"})))
    lead = _sync(http, {"email": "ann@example.com", "firstName": "Ann"})
    _sync(http, {"email": "ann@example.com", "firstName": "Anna"})  # an API change: constrained out
    emulator.change_by_person(lead, {"city": "Oslo"})  # not a field the campaign listens to
    emulator.change_by_person(lead, {"firstName": "Anne \"A\""}, source="Web form fillout")

    wait_for(lambda: emulator.webhook_deliveries(), "the webhook call")
    [request] = receiver.received()  # calls are serial: an earlier one would have arrived first
    assert request["method"] == "POST" and request["query"] == {"lead": str(lead)}
    assert json.loads(request["body"]) == {"id": lead, "email": "ann@example.com", "first": 'Anne "A"',
                                           "score": None}
    assert request["headers"]["x-webhook-secret"] == "s3cret"
    assert request["headers"]["x-lead-email"] == "ann@example.com"
    assert request["headers"]["content-type"] == "application/json"
    [delivery] = emulator.webhook_deliveries()
    assert (delivery.lead_id, delivery.status, delivery.error) == (lead, 200, None)


def test_without_a_source_constraint_api_writes_fire_it_too(setup) -> None:
    emulator, http, receiver, url = setup()
    emulator.add_trigger_campaign(TriggerCampaign(_definition(url), trigger="Lead is Created"))
    lead = _sync(http, {"email": "bo@example.com", "leadScore": 40})
    _sync(http, {"email": "bo@example.com", "firstName": "Bo"})  # an update is not a creation
    emulator.create_by_person({"email": "cy@example.com"}, source="Web form fillout")
    wait_for(lambda: len(receiver.received()) == 2, "two webhook calls")
    first, second = (json.loads(r["body"]) for r in receiver.received())
    assert first == {"id": lead, "email": "bo@example.com", "first": None, "score": 40}
    assert second["email"] == "cy@example.com"


def test_a_failed_call_is_not_retried_and_is_logged(setup) -> None:
    emulator, http, receiver, url = setup(status=500)
    emulator.add_trigger_campaign(TriggerCampaign(_definition(url)))
    lead = _sync(http, {"email": "dee@example.com"})
    emulator.change_by_person(lead, {"firstName": "Dee"})
    emulator.change_by_person(lead, {"firstName": "Di"})
    wait_for(lambda: len(emulator.webhook_deliveries()) == 2, "two webhook calls")
    assert len(receiver.received()) == 2  # one call per trigger, none repeated
    assert {(d.status, d.error) for d in emulator.webhook_deliveries()} == {(500, "Internal Server Error")}
    calls = [a for a in emulator.activities() if a["activityTypeId"] == 110]
    assert len(calls) == 2 and calls[0]["primaryAttributeValue"] == "Sync Person to Dynamics"
    assert {"name": "Error Type", "value": "Internal Server Error"} in calls[0]["attributes"]
