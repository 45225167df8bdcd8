"""The rules of one Marketo person per human (`bot.sync.identity`), without Marketo or Redis."""

from __future__ import annotations

from bot.models import AttributeMeta, Entity, EntityMetadata
from bot.sync.identity import (
    Identities,
    Person,
    Resolution,
    identity_columns,
    merged_into,
    resolve_merged,
    resolve_qualified,
)

LEAD, CONTACT, MASTER = "1ead-0001", "c0n7-0001", "1ead-0000"


def test_a_contact_without_a_person_joins_its_leads_person() -> None:
    persons = [Person(7, lead_id=LEAD), Person(8, lead_id="other-lead")]
    assert resolve_qualified(CONTACT, LEAD, persons) == Resolution(7, (), rekey=True)


def test_the_contacts_person_wins_over_the_leads() -> None:
    persons = [Person(3, lead_id=LEAD), Person(9, contact_id=CONTACT)]
    assert resolve_qualified(CONTACT, LEAD, persons) == Resolution(9, (3,), rekey=False)


def test_already_one_person_or_none_needs_nothing() -> None:
    assert resolve_qualified(CONTACT, LEAD, [Person(4, lead_id=LEAD, contact_id=CONTACT)]) == Resolution(4)
    assert resolve_qualified(CONTACT, LEAD, []) == Resolution()


def test_a_lead_person_holding_another_contact_is_not_this_human() -> None:
    persons = [Person(3, lead_id=LEAD, contact_id="another"), Person(9, contact_id=CONTACT)]
    assert resolve_qualified(CONTACT, LEAD, persons) == Resolution(9)


def test_ids_compare_without_case() -> None:
    assert resolve_qualified(CONTACT, LEAD, [Person(5, lead_id=LEAD.upper())]).winner == 5


def test_a_merged_away_record_merges_into_the_masters_person_or_becomes_it() -> None:
    both = [Person(2, lead_id=LEAD), Person(6, lead_id=MASTER)]
    assert resolve_merged(Entity.lead, LEAD, MASTER, both) == Resolution(6, (2,))
    assert resolve_merged(Entity.lead, LEAD, MASTER, [Person(2, lead_id=LEAD)]) == Resolution(2, (), rekey=True)
    assert resolve_merged(Entity.lead, LEAD, MASTER, [Person(6, lead_id=MASTER)]) == Resolution()


def test_merged_into_needs_both_the_flag_and_the_master() -> None:
    assert merged_into({"merged": True, "_masterid_value": "ABC"}) == "abc"
    assert merged_into({"merged": False, "_masterid_value": "abc"}) is None
    assert merged_into({"merged": True, "_masterid_value": None}) is None
    assert merged_into({}) is None


def test_identities_note_the_originating_lead_and_the_account() -> None:
    noted = Identities()
    noted.note(Entity.contact, CONTACT, {"_originatingleadid_value": LEAD, "_parentcustomerid_value": "ACC"})
    noted.note(Entity.lead, LEAD, {"_originatingleadid_value": "ignored on a lead"})
    assert noted.qualified_from == {CONTACT: LEAD} and noted.account_of == {CONTACT: "acc"}


def test_only_the_identity_columns_the_org_has_are_read() -> None:
    def meta(entity: Entity, *names: tuple[str, str]) -> EntityMetadata:
        return EntityMetadata(entity=entity, entity_set=f"{entity.value}s", primary_id=entity.primary_id,
                              attributes=[AttributeMeta(logical_name=n, display_name=n, attribute_type=t)
                                          for n, t in names])

    full = meta(Entity.contact, ("merged", "BooleanType"), ("masterid", "LookupType"),
                ("originatingleadid", "LookupType"), ("parentcustomerid", "CustomerType"))
    assert identity_columns(full) == ["merged", "_masterid_value", "_originatingleadid_value",
                                      "_parentcustomerid_value"]
    assert identity_columns(meta(Entity.lead, ("merged", "BooleanType"))) == ["merged"]  # no Sales: no more
    assert identity_columns(meta(Entity.account, ("merged", "BooleanType"))) == []
