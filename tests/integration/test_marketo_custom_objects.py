"""MarketoClient makes a plan's custom object type (create, add fields, approve) against the emulator,
idempotently: a repeat or a retry after a failure asks only for what is missing."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bot.custom_object_models import TableLookup
from bot.dynamics.custom_tables import CustomTableMeta
from bot.marketo.client import MarketoClient
from bot.marketo.errors import MarketoFatal
from bot.marketo.limiter import SharedLimiter
from bot.models import AttributeMeta, MarketoField
from bot.store import Keys, LimiterState
from bot.sync.custom_objects import plan_custom_objects, reachable_tables
from sandbox.marketo import MarketoEmulator

TABLE = CustomTableMeta(
    logical_name="new_project", entity_set="new_projects", primary_id="new_projectid", display_name="Project",
    attributes=[AttributeMeta(logical_name="new_name", display_name="Project Name", attribute_type="StringType"),
                AttributeMeta(logical_name="new_budget", display_name="Budget", attribute_type="MoneyType")],
    lookups=[TableLookup(table="new_project", attribute="new_contactid", target="contact")])
PLAN = plan_custom_objects(reachable_tables([TABLE]), {"new_project": ["new_name", "new_budget"]}, set())[0][0]


@pytest.fixture
def env(redis_client, key_prefix) -> Iterator[tuple[MarketoEmulator, MarketoClient]]:
    emulator = MarketoEmulator(client_id="cid", client_secret="csecret").start()
    limiter = SharedLimiter(LimiterState(redis_client, Keys(key_prefix)), calls_per_window=100, window_seconds=20,
                            max_concurrency=5)
    marketo = MarketoClient(emulator.url, "cid", "csecret", limiter=limiter)
    marketo.create_lead_fields([MarketoField(name="dynamicsContactId", display_name="Dynamics Contact Id",
                                             data_type="string")])
    yield emulator, marketo
    marketo.close()
    emulator.stop()


def test_the_type_is_made_approved_and_takes_linked_records(env: tuple[MarketoEmulator, MarketoClient]) -> None:
    emulator, marketo = env
    assert marketo.ensure_custom_object(PLAN) == ["dynNewProjectId", "dynamicsContactId", "newName", "newBudget"]
    assert marketo.ensure_custom_object(PLAN) == []
    assert marketo.custom_object_types() == {"dynNewProject"}  # counted toward the limit of 10 in the plan
    kind = emulator.custom_objects.types["dynNewProject"]
    assert kind.state() == "approved" and kind.approved is not None
    assert kind.approved.fields["dynamicsContactId"].related_to == {"name": "lead", "field": "dynamicsContactId"}
    marketo.sync_leads([{"email": "a@x.com", "dynamicsContactId": "c-1"}], "email")
    results = marketo.sync_custom_objects("dynNewProject", [
        {"dynNewProjectId": "p-1", "dynamicsContactId": "c-1", "newName": "One", "newBudget": 10.5},
        {"dynNewProjectId": "p-2", "dynamicsContactId": "c-2", "newName": "Two", "newBudget": None}])
    assert [r.status for r in results] == ["created", "skipped"]
    assert "No lead" in results[1].reasons[0].message


def test_a_retry_after_a_failed_add_field_finishes_the_type(env: tuple[MarketoEmulator, MarketoClient]) -> None:
    emulator, marketo = env
    emulator.fail_next(1, "1003", path="/rest/v1/customobjects/schema/dynNewProject/addField.json")
    with pytest.raises(MarketoFatal):
        marketo.ensure_custom_object(PLAN)
    assert emulator.custom_objects.types["dynNewProject"].state() == "draft"
    assert len(marketo.ensure_custom_object(PLAN)) == 4
    assert len(emulator.calls("/rest/v1/customobjects/schema.json")) == 1  # the type is not made twice
    assert emulator.custom_objects.types["dynNewProject"].state() == "approved"
