"""Who is who across Dynamics records, as the sync saw them: the leads qualified into contacts, and which
account each person works for. Read by `bot.sync.identity`; one hash or set per connection, written per batch."""

from __future__ import annotations

from collections.abc import Iterable

import redis
from redis.typing import EncodableT, FieldT

from bot.store.connection import as_text
from bot.store.keys import Keys


class PersonLinks:
    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        self._redis, self._keys = client, keys

    def link_qualified(self, team_id: str, connection_id: str, contact_of: dict[str, str]) -> None:
        """Leads (by id) qualified into contacts (`contact_of[lead] = contact`)."""
        if contact_of:
            mapping: dict[FieldT, EncodableT] = {k: v for k, v in contact_of.items()}
            self._redis.hset(self._keys.qualified_leads(team_id, connection_id), mapping=mapping)

    def qualified(self, team_id: str, connection_id: str, lead_ids: list[str]) -> dict[str, str]:
        """lead id → contact id, for the leads of `lead_ids` that were qualified into a synced contact."""
        if not lead_ids:
            return {}
        found = self._redis.hmget(self._keys.qualified_leads(team_id, connection_id), lead_ids)
        return {lead: as_text(contact) for lead, contact in zip(lead_ids, found, strict=True) if contact}

    def place(self, team_id: str, connection_id: str, account_of: dict[str, str]) -> None:
        """People (`lead:<id>`, `contact:<id>`) now working for an account, in one round trip."""
        if not account_of:
            return
        mapping: dict[FieldT, EncodableT] = {k: v for k, v in account_of.items()}
        with self._redis.pipeline(transaction=False) as pipe:
            pipe.hset(self._keys.person_accounts(team_id, connection_id), mapping=mapping)
            for person, account in account_of.items():
                pipe.sadd(self._keys.account_people(team_id, connection_id, account), person)
            pipe.execute()

    def people_at(self, team_id: str, connection_id: str, account_id: str) -> list[str]:
        """The people whose account, as last synced, is `account_id` (one who moved on is left out)."""
        members = sorted(as_text(m) for m in self._redis.smembers(self._keys.account_people(team_id, connection_id,
                                                                                              account_id)))
        if not members:
            return []
        now = self._redis.hmget(self._keys.person_accounts(team_id, connection_id), members)
        return [person for person, account in zip(members, now, strict=True)
                if account is not None and as_text(account) == account_id]

    def forget_accounts(self, team_id: str, connection_id: str, account_ids: Iterable[str]) -> None:
        keys = [self._keys.account_people(team_id, connection_id, a) for a in account_ids]
        if keys:
            self._redis.delete(*keys)
