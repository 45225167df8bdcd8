"""The Dataverse emulator's `opportunities` and their contact roles (`connections`), as Dataverse has them.

An opportunity's contact roles are connections: `record1id` the opportunity (`record1objecttypecode` 3), `record2id` the contact,
`record2roleid` the connection role ("Decision Maker", ...), whose name comes as the lookup's formatted
value. Connection k belongs to opportunity k // 2: the even one is the opportunity's primary contact
(`parentcontactid`), the odd one another contact. Like every emulated record, each value is computed
from (seed, entity, index).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

OPPORTUNITY_TYPE_CODE = 3  # the object type code of `opportunity`, as a connection's `record1objecttypecode`
ENTITY_SETS = {"opportunity": "opportunities", "connection": "connections"}
PRIMARY_NAMES = {"opportunity": "name", "connection": "name"}
# The tables these lookups point to (their `lookuplogicalname` annotation); the others point to a systemuser.
LOOKUP_TARGETS = {"record1id": "opportunity", "record2id": "contact", "record2roleid": "connectionrole",
                  "parentcontactid": "contact"}
STATES = ("Open", "Won", "Lost")
STEPS = ("1-Qualify", "2-Develop", "3-Propose", "4-Close")
ROLES = ("Decision Maker", "Influencer", "Technical Buyer", "Economic Buyer", "Stakeholder")
_TOPICS = ("Chairs", "Desks", "Laptops", "Support plan", "Licences", "Training")

Generator = Callable[[int, bytes], tuple[Any, str | None]]
Digest = Callable[[str, int], bytes]


def attribute_rows(spec: Callable[..., Any]) -> dict[str, list[Any]]:
    """The columns of both tables, built with the emulator's `AttrSpec`."""
    audit = [
        spec("modifiedon", "Modified On", "DateTimeType", behavior="UserLocal"),
        spec("createdon", "Created On", "DateTimeType", behavior="UserLocal"),
        spec("ownerid", "Owner", "OwnerType"),
        spec("createdby", "Created By", "LookupType"),
        spec("modifiedby", "Modified By", "LookupType"),
    ]
    return {
        "opportunity": [
            spec("opportunityid", "Opportunity", "UniqueidentifierType"),
            spec("name", "Topic", "StringType", format="Text"),
            spec("estimatedvalue", "Est. Revenue", "MoneyType"),
            spec("closeprobability", "Probability", "IntegerType"),
            spec("estimatedclosedate", "Est. Close Date", "DateTimeType", behavior="DateOnly"),
            spec("stepname", "Pipeline Phase", "StringType", format="Text"),
            spec("statecode", "Status", "StateType"),
            spec("parentaccountid", "Account", "LookupType"),
            spec("parentcontactid", "Contact", "LookupType"),
            spec("customerid", "Potential Customer", "CustomerType"),
            spec("description", "Description", "MemoType"),
            *audit,
        ],
        "connection": [
            spec("connectionid", "Connection", "UniqueidentifierType"),
            spec("name", "Name", "StringType", format="Text"),
            spec("record1id", "Connected From", "LookupType"),
            spec("record1objecttypecode", "Type (Connected From)", "PicklistType"),
            spec("record2id", "Connected To", "LookupType"),
            spec("record2roleid", "As this Role (To)", "LookupType"),
            *audit,
        ],
    }


def opportunity_contact(opportunity: int, contacts: int, offset: int = 0) -> int:
    """The index of the contact that opportunity `opportunity` names (`offset` 0: its primary contact)."""
    return (opportunity * 3 + offset) % max(contacts, 1)


class Generators:
    """Value generators for the columns specific to these tables (None: the emulator's generic one)."""

    def __init__(self, seed: int, records: dict[str, int], digest: Digest, guid: Callable[..., str],
                 account_name: Callable[[int], str], contact_name: Callable[[int], str]) -> None:
        self.seed, self.records, self.digest, self.guid = seed, records, digest, guid
        self.account_name, self.contact_name = account_name, contact_name

    def _count(self, entity: str) -> int:
        return max(self.records.get(entity, 0), 1)

    def _contact(self, index: int) -> tuple[Any, str | None]:
        return self.guid(self.seed, "contact", index), self.contact_name(index)

    def for_column(self, entity: str, name: str) -> Generator | None:
        if entity == "opportunity":
            return self._opportunity(name)
        if entity == "connection":
            return self._connection(name)
        return None

    def lookup_label(self, entity: str, name: str, value: Any) -> str | None:
        """The formatted value (the referenced row's name) of a lookup written to a record: a connection
        role's name for `record2roleid`."""
        if entity != "connection" or name != "record2roleid":
            return None
        return next((role for role in ROLES if self.guid("connectionrole", role) == value), None)

    def role_id(self, role: str) -> str:
        """The id of the connection role named `role`."""
        return str(self.guid("connectionrole", role))

    def _opportunity(self, name: str) -> Generator | None:
        accounts, contacts = self._count("account"), self._count("contact")
        account = self.account_name
        table: dict[str, Generator] = {
            "name": lambda i, h: (f"{_TOPICS[h[3] % len(_TOPICS)]} {i}", None),
            "closeprobability": lambda i, h: (h[9] % 101, f"{h[9] % 101}"),
            "stepname": lambda i, h: (STEPS[h[10] % len(STEPS)], None),
            "statecode": lambda i, h: (h[11] % 3, STATES[h[11] % 3]),
            "parentaccountid": lambda i, h: (self.guid(self.seed, "account", i % accounts), account(i % accounts)),
            "customerid": lambda i, h: (self.guid(self.seed, "account", i % accounts), account(i % accounts)),
            "parentcontactid": lambda i, h: self._contact(opportunity_contact(i, contacts)),
            "description": lambda i, h: (None, None),
        }
        return table.get(name)

    def _connection(self, name: str) -> Generator | None:
        opportunities, contacts = self._count("opportunity"), self._count("contact")

        def opportunity(k: int) -> int:
            return (k // 2) % opportunities

        def role(k: int, h: bytes) -> str:
            return ROLES[0] if k % 2 == 0 else ROLES[1 + h[5] % (len(ROLES) - 1)]

        table: dict[str, Generator] = {
            "name": lambda k, h: (f"Role {k}", None),
            "record1id": lambda k, h: (self.guid(self.seed, "opportunity", opportunity(k)), None),
            "record1objecttypecode": lambda k, h: (OPPORTUNITY_TYPE_CODE, "Opportunity"),
            "record2id": lambda k, h: self._contact(opportunity_contact(opportunity(k), contacts, k % 2)),
            "record2roleid": lambda k, h: (self.guid("connectionrole", role(k, h)), role(k, h)),
        }
        return table.get(name)
