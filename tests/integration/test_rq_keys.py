"""RQ's keys live under REDIS_KEY_PREFIX, like every other key of the product."""

from __future__ import annotations

import os
import subprocess
import sys

import redis

from tests.conftest import REDIS_URL

RUN_ONE_JOB = """
import math, sys
from bot.store import connect, jobs
client = connect(sys.argv[1])
queue = jobs.queue(client, sys.argv[2], "sync")
job = queue.enqueue(math.sqrt, 16)
assert jobs.worker([queue], client).work(burst=True)
assert job.latest_result().return_value == 4.0
print(job.id)
"""


def test_a_job_through_the_prefixed_queue_and_worker_leaves_only_prefixed_keys(
    redis_client: redis.Redis, key_prefix: str
) -> None:
    env = {k: v for k, v in os.environ.items() if k != "RQ_KEY_PREFIX"} | {"REDIS_KEY_PREFIX": key_prefix}
    done = subprocess.run([sys.executable, "-c", RUN_ONE_JOB, REDIS_URL, key_prefix], env=env, check=True,
                          capture_output=True, text=True, timeout=60)
    job_id = done.stdout.strip().splitlines()[-1]

    created = {key.decode() for pattern in (f"*{key_prefix}*", f"*{job_id}*")
               for key in redis_client.scan_iter(match=pattern, count=1000)}
    assert f"{key_prefix}:rq:job:{job_id}" in created
    assert f"{key_prefix}:rq:finished:{key_prefix}-sync" in created
    assert [key for key in created if not key.startswith(f"{key_prefix}:")] == []
