"""What the CRM links of one connection need in Redis (`bot.sync.links`).

- the accounts written to Marketo as companies (a person may carry `externalCompanyId` only then);
- per account, the people written before it (`entity:id`), linked when it is written, and per person the
  account it waits for now (a person may move to another account while it waits);
- the Dynamics users already upserted as Marketo sales persons (forgotten daily, so names refresh);
- the opportunity of each contact role (Dataverse connection) seen, so that a deleted one's is known.

The person side adds itself to its account's waiters and then checks the account; the account side
marks itself written and then reads its waiters. Whatever the interleaving of two workers, one of the
two sees the other, so no person is left unlinked (at worst it is linked twice, which is harmless).
"""

from __future__ import annotations

from collections.abc import Iterable

import redis

from bot.store.connection import as_text
from bot.store.keys import Keys

SALES_PERSONS_TTL_SECONDS = 24 * 3600


class CrmLinks:
    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        self._redis, self._keys = client, keys

    # -- companies -------------------------------------------------------------------------------------
    def companies_written(self, team_id: str, connection_id: str, account_ids: Iterable[str]) -> set[str]:
        """Those of `account_ids` that were written to Marketo."""
        ids = list(dict.fromkeys(account_ids))
        if not ids:
            return set()
        flags = self._redis.smismember(self._keys.linked_companies(team_id, connection_id), ids)
        return {account for account, flag in zip(ids, flags, strict=True) if flag}

    def mark_companies_written(self, team_id: str, connection_id: str, account_ids: list[str]) -> None:
        if account_ids:
            self._redis.sadd(self._keys.linked_companies(team_id, connection_id), *account_ids)

    def wait_for_companies(self, team_id: str, connection_id: str, waiters: dict[str, list[str]],
                           settled: list[str]) -> None:
        """`waiters`: account id → `entity:id` of people written without their link; `settled`: people written
        linked or with no account, who wait for nothing any more (whatever account they waited for before)."""
        if not waiters and not settled:
            return
        awaited = self._keys.company_awaited(team_id, connection_id)
        with self._redis.pipeline(transaction=False) as pipe:
            if settled:
                pipe.hdel(awaited, *settled)
            for account_id, people in waiters.items():
                pipe.sadd(self._keys.company_waiters(team_id, connection_id, account_id), *people)
                pipe.hset(awaited, mapping=dict.fromkeys(people, account_id))
            pipe.execute()

    def company_waiters(self, team_id: str, connection_id: str, account_ids: list[str]) -> dict[str, list[str]]:
        """Account id → the people waiting for it now (only accounts with some). People who moved to another
        account since they were added are left out, and dropped from this account's waiters."""
        if not account_ids:
            return {}
        with self._redis.pipeline(transaction=False) as pipe:
            for account_id in account_ids:
                pipe.smembers(self._keys.company_waiters(team_id, connection_id, account_id))
            replies = pipe.execute()
        members = {account_id: sorted(as_text(m) for m in found)
                   for account_id, found in zip(account_ids, replies, strict=True) if found}
        people = [person for found in members.values() for person in found]
        if not people:
            return {}
        awaited = self._redis.hmget(self._keys.company_awaited(team_id, connection_id), people)
        now = {person: as_text(account) for person, account in zip(people, awaited, strict=True) if account}
        waiting: dict[str, list[str]] = {}
        with self._redis.pipeline(transaction=False) as pipe:
            for account_id, found in members.items():
                moved = [p for p in found if now.get(p) != account_id]
                if moved:
                    pipe.srem(self._keys.company_waiters(team_id, connection_id, account_id), *moved)
                current = [p for p in found if p not in moved]
                if current:
                    waiting[account_id] = current
            pipe.execute()
        return waiting

    def linked(self, team_id: str, connection_id: str, waiters: dict[str, list[str]]) -> None:
        """Take people off their accounts' waiters once their link is written."""
        if not waiters:
            return
        with self._redis.pipeline(transaction=False) as pipe:
            for account_id, people in waiters.items():
                pipe.srem(self._keys.company_waiters(team_id, connection_id, account_id), *people)
            pipe.hdel(self._keys.company_awaited(team_id, connection_id),
                      *[person for people in waiters.values() for person in people])
            pipe.execute()

    # -- sales persons ---------------------------------------------------------------------------------
    def sales_persons_known(self, team_id: str, connection_id: str, user_ids: Iterable[str]) -> set[str]:
        ids = list(dict.fromkeys(user_ids))
        if not ids:
            return set()
        flags = self._redis.smismember(self._keys.sales_persons(team_id, connection_id), ids)
        return {user for user, flag in zip(ids, flags, strict=True) if flag}

    def remember_sales_persons(self, team_id: str, connection_id: str, user_ids: list[str]) -> None:
        """The set expires a day after it was started, so every owner is upserted again (new names) daily."""
        if not user_ids:
            return
        key = self._keys.sales_persons(team_id, connection_id)
        with self._redis.pipeline() as pipe:
            pipe.sadd(key, *user_ids)
            pipe.expire(key, SALES_PERSONS_TTL_SECONDS, nx=True)
            pipe.execute()

    # -- contact roles ---------------------------------------------------------------------------------
    def role_opportunities(self, team_id: str, connection_id: str, role_ids: Iterable[str]) -> dict[str, str]:
        """Connection id → its opportunity, for those of `role_ids` seen before."""
        ids = list(dict.fromkeys(role_ids))
        if not ids:
            return {}
        found = self._redis.hmget(self._keys.role_opportunities(team_id, connection_id), ids)
        return {role: as_text(opportunity) for role, opportunity in zip(ids, found, strict=True) if opportunity}

    def remember_roles(self, team_id: str, connection_id: str, opportunities: dict[str, str],
                       gone: list[str]) -> None:
        """Connection id → opportunity for the roles seen now; `gone`, the deleted ones, are forgotten."""
        key = self._keys.role_opportunities(team_id, connection_id)
        with self._redis.pipeline() as pipe:
            if opportunities:
                pipe.hset(key, mapping={role: opportunity for role, opportunity in opportunities.items()})
            if gone:
                pipe.hdel(key, *gone)
            pipe.execute()
