"""The Redis side of Marketo's bulk import queue limit (10 jobs per subscription, C4), shared by every worker.

Each job this product has in Marketo's queue holds one slot: a member of a sorted set scored by its
lease deadline (Redis time, ms). A worker renews the slots of the imports it watches and releases a
slot when its import is finished; a worker that dies stops renewing, and its slots lapse after the
lease, so the limit recovers by itself. A job resumed after such a death takes its slot back at once
(`force`): its import is in Marketo's queue whatever the count says. A cancelled run's slots are released
at once (`release_run`): nothing watches its imports any more.
"""

from __future__ import annotations

import redis

from bot.store.keys import Keys

_TAKE = """
local slots, id, limit, lease, force = KEYS[1], ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4] == '1'
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', slots, '-inf', now)
if not (force or redis.call('ZSCORE', slots, id) or redis.call('ZCARD', slots) < limit) then return 0 end
redis.call('ZADD', slots, now + lease, id)
if redis.call('PTTL', slots) < lease then redis.call('PEXPIRE', slots, lease) end
return 1
"""

_RENEW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local lease = tonumber(ARGV[1])
for i = 2, #ARGV do redis.call('ZADD', KEYS[1], 'XX', now + lease, ARGV[i]) end
if redis.call('PTTL', KEYS[1]) < lease then redis.call('PEXPIRE', KEYS[1], lease) end
return 1
"""

_RELEASE_RUN = """
local n = 0
for _, id in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  if string.sub(id, 1, #ARGV[1]) == ARGV[1] then n = n + redis.call('ZREM', KEYS[1], id) end
end
return n
"""


class BulkSlots:
    """Slots of the subscription's bulk import queue, under `{prefix}:global:marketo:bulk-imports`."""

    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        self._redis = client
        self._key = keys.marketo_bulk_slots()
        self._take = client.register_script(_TAKE)
        self._renew = client.register_script(_RENEW)
        self._release_run = client.register_script(_RELEASE_RUN)

    @staticmethod
    def holder(team_id: str, run_id: str, entity: str, seq: int) -> str:
        """Who holds a slot: one part of one entity of a run."""
        return f"{team_id}:{run_id}:{entity}:{seq}"

    def take(self, holder: str, limit: int, lease_seconds: float, *, force: bool = False) -> bool:
        """Hold a slot for `holder` when fewer than `limit` are held (or `force`); renews one already held."""
        return bool(self._take(keys=[self._key], args=[holder, limit, int(lease_seconds * 1000), int(force)]))

    def renew(self, holders: list[str], lease_seconds: float) -> None:
        """Push the lease of the slots still held by `holders` (a lapsed one is not taken back)."""
        if holders:
            self._renew(keys=[self._key], args=[int(lease_seconds * 1000), *holders])

    def release(self, holder: str) -> None:
        self._redis.zrem(self._key, holder)

    def release_run(self, team_id: str, run_id: str) -> int:
        """Release every slot of a run's parts; returns how many were held."""
        return int(self._release_run(keys=[self._key], args=[f"{team_id}:{run_id}:"]))

    def held(self) -> int:
        """Slots held now (lapsed ones not counted)."""
        now_s, now_us = self._redis.time()
        return int(self._redis.zcount(self._key, now_s * 1000 + now_us // 1000, "+inf"))
