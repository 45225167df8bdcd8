"""The Dataverse emulator's QualifyLead and Merge actions over real HTTPS (reference sync-more §D6): a qualified
lead's new contact points back to it, a merged-away record is deactivated and marked, and change tracking shows
both as updates."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from bot.dynamics import errors
from bot.dynamics.client import DataverseClient
from bot.sync.links import LOOKUP_TARGET
from sandbox.dynamics import DynamicsEmulator

IDENTITY = ["firstname", "emailaddress1", "statecode", "merged", "_masterid_value"]


@pytest.fixture
def emulator(start_dynamics: Callable[..., DynamicsEmulator]) -> DynamicsEmulator:
    return start_dynamics(records={"lead": 10, "contact": 5})


def rows(client: DataverseClient, entity: str, select: list[str], link: str | None = None) -> dict[str, dict]:
    pages = client.iter_changes(link, select) if link else client.iter_pages(entity, select, track_changes=False)
    return {r[f"{entity}id"]: r for page in pages for r in page.records}


def delta_link(client: DataverseClient, entity: str, select: list[str]) -> str:
    link = list(client.iter_pages(entity, select))[-1].delta_link
    assert link
    return link


def test_qualify_lead_creates_a_contact_pointing_back_and_closes_the_lead(emulator: DynamicsEmulator,
                                                                          client: DataverseClient) -> None:
    lead_id = emulator.record_id("lead", 3)
    leads_link = delta_link(client, "lead", IDENTITY)
    contacts_link = delta_link(client, "contact", ["_originatingleadid_value"])
    answer = client.send("POST", client.url(f"leads({lead_id})/Microsoft.Dynamics.CRM.QualifyLead"),
                         body={"CreateAccount": False, "CreateContact": True, "CreateOpportunity": False,
                               "Status": 3}, idempotent=False).json()
    contact_id = answer["value"][0]["contactid"]

    contact = rows(client, "contact", ["firstname", "emailaddress1", "_originatingleadid_value"])[contact_id]
    lead = rows(client, "lead", IDENTITY)[lead_id]
    assert contact["_originatingleadid_value"] == lead_id
    assert (contact["firstname"], contact["emailaddress1"]) == (lead["firstname"], lead["emailaddress1"])
    assert lead["statecode"] == 1  # Qualified
    assert set(rows(client, "lead", IDENTITY, leads_link)) == {lead_id}  # the lead changed: an update
    assert set(rows(client, "contact", ["_originatingleadid_value"], contacts_link)) == {contact_id}
    client.update("contact", contact_id, {"originatingleadid@odata.bind": f"/leads({emulator.record_id('lead', 4)})",
                                          "firstname": "Changed"})
    after = rows(client, "contact", ["firstname", "_originatingleadid_value"])[contact_id]
    assert after == {**after, "firstname": "Changed", "_originatingleadid_value": lead_id}  # read-only after create
    with pytest.raises(errors.DataverseBadRequest):  # a qualified lead is not open any more
        client.send("POST", client.url(f"leads({lead_id})/Microsoft.Dynamics.CRM.QualifyLead"),
                    body={"CreateContact": True, "Status": 3}, idempotent=False)


def test_every_created_row_gets_the_server_columns_and_a_qualified_contact_no_account(
        emulator: DynamicsEmulator, client: DataverseClient) -> None:
    lead_id = next(r["leadid"] for r in emulator.expected_records("lead", ["_parentaccountid_value"], apply_filter=False)
                   if r["_parentaccountid_value"])
    posted = client.create("contact", {"firstname": "Ann", "lastname": "Bo"})
    qualified = client.send("POST", client.url(f"leads({lead_id})/Microsoft.Dynamics.CRM.QualifyLead"),
                            body={"CreateContact": True, "Status": 3}, idempotent=False).json()["value"][0]["contactid"]

    contacts = rows(client, "contact", ["firstname", "lastname", "fullname", "statecode", "merged",
                                        "_parentcustomerid_value", "_originatingleadid_value"])
    lead = rows(client, "lead", ["fullname"])[lead_id]
    assert contacts[posted] == {**contacts[posted], "fullname": "Ann Bo", "statecode": 0, "merged": False}
    assert contacts[qualified] == {**contacts[qualified], "fullname": lead["fullname"], "statecode": 0,
                                   "merged": False, "_parentcustomerid_value": None}  # the lead's account is not copied
    assert contacts[qualified]["_originatingleadid_value" + LOOKUP_TARGET] == "lead"  # as its webhooks say


def test_merge_deactivates_and_marks_the_subordinate_seen_as_an_update(emulator: DynamicsEmulator,
                                                                       client: DataverseClient) -> None:
    master, loser = emulator.record_id("lead", 1), emulator.record_id("lead", 2)
    link = delta_link(client, "lead", IDENTITY)
    client.send("POST", client.url("Merge"), body={
        "Target": {"@odata.type": "Microsoft.Dynamics.CRM.lead", "leadid": master},
        "Subordinate": {"@odata.type": "Microsoft.Dynamics.CRM.lead", "leadid": loser},
        "UpdateContent": {"@odata.type": "Microsoft.Dynamics.CRM.lead", "firstname": "Merged"},
        "PerformParentingChecks": False}, idempotent=False)

    after = rows(client, "lead", IDENTITY)
    assert after[loser]["merged"] is True and after[loser]["_masterid_value"] == master
    assert after[loser]["statecode"] == 1  # deactivated, not deleted
    assert after[master]["merged"] is False and after[master]["firstname"] == "Merged"
    changed = rows(client, "lead", IDENTITY, link)
    assert set(changed) == {master, loser} and changed[loser]["merged"] is True
    with pytest.raises(errors.DataverseBadRequest):  # merged once: cannot be merged again
        client.send("POST", client.url("Merge"), body={
            "Target": {"@odata.type": "Microsoft.Dynamics.CRM.lead", "leadid": master},
            "Subordinate": {"@odata.type": "Microsoft.Dynamics.CRM.lead", "leadid": loser}}, idempotent=False)
