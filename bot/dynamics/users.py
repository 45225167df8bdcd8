"""Dynamics users (`systemusers`) as the sync needs them: the owners of records, to become Marketo sales persons."""

from __future__ import annotations

import uuid
from typing import Protocol

import httpx
from pydantic import BaseModel, ConfigDict

USER_COLUMNS = "systemuserid,fullname,firstname,lastname,internalemailaddress"
USERS_PER_READ = 50  # ids per `$filter` (an `or` of `eq`s), as for records
# Interactive users who may own records: not disabled, not application or non-interactive users (accessmode 0).
OWNER_CANDIDATES = "isdisabled eq false and accessmode eq 0"


class UserReader(Protocol):
    def url(self, path: str, params: dict[str, str] | None = None) -> str: ...

    def get(self, url: str, prefer: list[str] | None = None) -> httpx.Response: ...


class DynamicsUser(BaseModel):
    model_config = ConfigDict(extra="ignore")

    systemuserid: str
    fullname: str | None = None
    firstname: str | None = None
    lastname: str | None = None
    internalemailaddress: str | None = None


class _Users(BaseModel):
    model_config = ConfigDict(extra="ignore")

    value: list[DynamicsUser]


def read_users(client: UserReader, user_ids: list[str]) -> list[DynamicsUser]:
    """The users of `user_ids` that exist (ids that are not GUIDs are left out, never sent)."""
    ids = [str(uuid.UUID(i)) for i in dict.fromkeys(user_ids) if _is_guid(i)]
    found: list[DynamicsUser] = []
    for start in range(0, len(ids), USERS_PER_READ):
        where = " or ".join(f"systemuserid eq {i}" for i in ids[start:start + USERS_PER_READ])
        url = client.url("systemusers", {"$select": USER_COLUMNS, "$filter": where})
        found.extend(_Users.model_validate_json(client.get(url).content).value)
    return found


def count_owner_candidates(client: UserReader) -> int:
    """How many Dynamics users may own synced records (the plan's "Owners" line)."""
    url = client.url("systemusers", {"$select": "systemuserid", "$filter": OWNER_CANDIDATES})
    return len(_Users.model_validate_json(client.get(url).content).value)


def _is_guid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except (TypeError, ValueError):
        return False
    return True
