"""Dataverse webhooks against the emulator: registration through the Web API, deliveries to a
loopback listener with the key and the documented body, failure behaviour, and removal."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import pytest

from bot.dynamics.client import DataverseClient
from bot.dynamics.webhooks import DataverseNotification, key_matches
from bot.models import Entity
from sandbox.dynamics import DynamicsEmulator
from sandbox.polling import wait_for
from tests.support.listener import Listener, listener

KEY = "s3cret-key"


@pytest.fixture
def emulator(start_dynamics: Callable[..., DynamicsEmulator]) -> DynamicsEmulator:
    return start_dynamics(records={"lead": 20, "contact": 5})


@pytest.fixture
def receiver() -> Iterator[Listener]:
    with listener(status=200) as seen:
        yield seen


def hook_url(seen: Listener) -> str:
    return f"http://127.0.0.1:{seen.port}/dynamics/webhook"


def delivery(seen: Listener, n: int) -> tuple[dict[str, str], DataverseNotification]:
    """The `n`th delivery (1-based), once it has arrived."""
    wait_for(lambda: len(seen.bodies) >= n, f"delivery {n}")
    return seen.headers[n - 1], DataverseNotification.model_validate_json(seen.bodies[n - 1])


def test_a_registered_webhook_receives_creates_updates_and_deletes(
    emulator: DynamicsEmulator, client: DataverseClient, receiver: Listener
) -> None:
    me = client.whoami().user_id
    registration = client.register_webhook(hook_url(receiver), KEY, [Entity.lead])
    assert len(registration.step_ids) == 3

    lead = client.create("lead", {"lastname": "Ng", "subject": "Web"})
    client.update("lead", lead, {"firstname": "Ada"})
    emulator.update_record("lead", 2, jobtitle="CFO")
    emulator.delete_record("lead", 4)
    client.create("contact", {"lastname": "Not registered"})

    headers, created = delivery(receiver, 1)
    assert key_matches(headers, KEY) and not key_matches(headers, "wrong")
    assert headers["x-ms-dynamics-entity-name"] == "lead" and headers["x-ms-dynamics-request-name"] == "Create"
    assert headers["x-ms-dynamics-organization"] and headers["x-ms-correlation-request-id"]
    assert (created.message_name, created.primary_entity_name, created.primary_entity_id) == ("Create", "lead", lead)
    assert created.target_attributes["lastname"] == "Ng" and created.made_by(me)
    raw = json.loads(receiver.bodies[0])
    assert raw["InputParameters"][0]["key"] == "Target" and raw["Stage"] == 40 and raw["Mode"] == 1
    assert raw["OwningExtension"]["Id"] in registration.step_ids

    _, updated = delivery(receiver, 2)
    assert updated.message_name == "Update" and updated.made_by(me)
    assert updated.target_attributes["firstname"] == "Ada" and "lastname" not in updated.target_attributes
    assert updated.target_attributes["modifiedby"] == me

    _, by_person = delivery(receiver, 3)
    assert by_person.primary_entity_id == emulator.record_id("lead", 2)
    assert not by_person.made_by(me) and by_person.initiating_user_id == emulator.person_user_id

    _, deleted = delivery(receiver, 4)
    assert (deleted.message_name, deleted.primary_entity_id) == ("Delete", emulator.record_id("lead", 4))
    assert deleted.target_attributes == {}

    (index,) = emulator.create_records("lead", 1)
    _, generated = delivery(receiver, 5)
    assert (generated.message_name, generated.primary_entity_id) == ("Create", emulator.record_id("lead", index))
    assert not generated.made_by(me) and generated.target_attributes["emailaddress1"]
    client.unregister_webhook(registration)
    assert len(receiver.bodies) == 5  # the contact table was not registered


def test_unregister_stops_deliveries(emulator: DynamicsEmulator, client: DataverseClient, receiver: Listener) -> None:
    registration = client.register_webhook(hook_url(receiver), KEY, ["lead"], ["Update"])
    client.update("lead", emulator.record_id("lead", 1), {"lastname": "One"})
    delivery(receiver, 1)
    client.unregister_webhook(registration)
    client.unregister_webhook(registration)  # a second removal is harmless
    rows = client.get(client.url("serviceendpoints", {"$select": "serviceendpointid"})).json()["value"]
    assert rows == []
    with listener(status=200) as witness:
        client.register_webhook(hook_url(witness), KEY, ["lead"], ["Update"])
        client.update("lead", emulator.record_id("lead", 1), {"lastname": "Two"})
        delivery(witness, 1)  # deliveries go out in order: anything for the old one would have come first
    assert len(receiver.bodies) == 1


@pytest.mark.parametrize(("status", "attempts"), [(503, 2), (500, 1)])
def test_a_failed_delivery_is_retried_once_only_for_502_503_504_then_left_as_a_system_job(
    emulator: DynamicsEmulator, client: DataverseClient, status: int, attempts: int
) -> None:
    with listener(status=status) as failing:
        registration = client.register_webhook(hook_url(failing), KEY, ["lead"], ["Update"])
        client.update("lead", emulator.record_id("lead", 1), {"lastname": "Retry"})
        params = {"$select": "friendlymessage,errorcode,completedon",
                  "$filter": f"statuscode eq 31 and _owningextensionid_value eq {registration.step_ids[0]}"}
        jobs = wait_for(lambda: client.get(client.url("asyncoperations", params)).json()["value"], "a failed job")
    assert len(failing.bodies) == attempts
    assert str(status) in jobs[0]["friendlymessage"]


def test_update_steps_honour_filtering_attributes(emulator: DynamicsEmulator, client: DataverseClient,
                                                  receiver: Listener) -> None:
    client.register_webhook(hook_url(receiver), KEY, ["lead"], ["Update"])
    step = {"name": "only email", "mode": 1, "stage": 40, "filteringattributes": "emailaddress1"}
    endpoint = client.get(client.url("serviceendpoints", {"$select": "serviceendpointid"})).json()["value"][0]
    message = client.get(client.url("sdkmessages", {"$select": "sdkmessageid", "$filter": "name eq 'Update'"}))
    filter_row = client.get(client.url("sdkmessagefilters", {
        "$select": "sdkmessagefilterid",
        "$filter": "sdkmessageid/name eq 'Update' and primaryobjecttypecode eq 'lead'"}))
    with listener(status=200) as email_only:
        client.send("POST", client.url("serviceendpoints"), body={
            "name": "email", "url": hook_url(email_only), "contract": 8, "authtype": 4, "authvalue": "k"})
        second = client.get(client.url("serviceendpoints", {"$select": "serviceendpointid,name",
                                                             "$filter": "name eq 'email'"})).json()["value"][0]
        assert second["serviceendpointid"] != endpoint["serviceendpointid"]
        client.send("POST", client.url("sdkmessageprocessingsteps"), body={
            **step, "eventhandler_serviceendpoint@odata.bind": f"/serviceendpoints({second['serviceendpointid']})",
            "sdkmessageid@odata.bind": f"/sdkmessages({message.json()['value'][0]['sdkmessageid']})",
            "sdkmessagefilterid@odata.bind":
                f"/sdkmessagefilters({filter_row.json()['value'][0]['sdkmessagefilterid']})"})
        client.update("lead", emulator.record_id("lead", 1), {"lastname": "Skipped"})
        client.update("lead", emulator.record_id("lead", 1), {"emailaddress1": "sent@x.com"})
        delivery(receiver, 2)
        wait_for(lambda: email_only.bodies, "the email-only delivery")
    assert len(email_only.bodies) == 1 and "code=k" in email_only.requests[0]
    assert DataverseNotification.model_validate_json(email_only.bodies[0]).target_attributes["emailaddress1"] \
        == "sent@x.com"
