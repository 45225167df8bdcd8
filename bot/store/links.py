"""What the CRM links of one connection need in Redis (`bot.sync.links`).

- the accounts written to Marketo as companies (a person may carry `externalCompanyId` only then);
- per account, the people written before it (`entity:id`), linked when it is written;
- the Dynamics users already upserted as Marketo sales persons (forgotten daily, so names refresh).

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

    def wait_for_companies(self, team_id: str, connection_id: str, waiters: dict[str, list[str]]) -> None:
        """`waiters`: account id → `entity:id` of people written without their link."""
        if not waiters:
            return
        with self._redis.pipeline(transaction=False) as pipe:
            for account_id, people in waiters.items():
                pipe.sadd(self._keys.company_waiters(team_id, connection_id, account_id), *people)
            pipe.execute()

    def company_waiters(self, team_id: str, connection_id: str, account_ids: list[str]) -> dict[str, list[str]]:
        """Account id → the people waiting for it (only accounts with some)."""
        with self._redis.pipeline(transaction=False) as pipe:
            for account_id in account_ids:
                pipe.smembers(self._keys.company_waiters(team_id, connection_id, account_id))
            replies = pipe.execute()
        return {account_id: sorted(as_text(m) for m in members)
                for account_id, members in zip(account_ids, replies, strict=True) if members}

    def linked(self, team_id: str, connection_id: str, waiters: dict[str, list[str]]) -> None:
        """Take people off their accounts' waiters once their link is written."""
        if not waiters:
            return
        with self._redis.pipeline(transaction=False) as pipe:
            for account_id, people in waiters.items():
                pipe.srem(self._keys.company_waiters(team_id, connection_id, account_id), *people)
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
