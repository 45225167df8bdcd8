"""RQ's keys under `REDIS_KEY_PREFIX`.

RQ 3 builds every key it owns (queues, jobs, registries, workers, results, executions, the
scheduler's locks, suspension) from one constant, `rq.defaults.RQ_KEY_PREFIX`, read from the
`RQ_KEY_PREFIX` environment variable when `rq` is first imported. Its class attributes
(`Queue.redis_queue_namespace_prefix`, `Job.redis_job_namespace_prefix`, …) cover only some of
those keys (registries, results, executions and the worker sets are module constants), so the
environment variable is the one supported way to prefix them all. It is set when the `bot`
package is imported, before anything imports `rq`: RQ's keys become `{REDIS_KEY_PREFIX}:rq:…`.
The prefix is therefore per process, like the setting it comes from; an explicit
`RQ_KEY_PREFIX` in the environment wins.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import MutableMapping

log = logging.getLogger(__name__)

DEFAULT_KEY_PREFIX = "cd"  # the default of `Settings.REDIS_KEY_PREFIX`


def rq_key_prefix(environ: MutableMapping[str, str] = os.environ) -> str:
    """Put `{REDIS_KEY_PREFIX}:rq` in `RQ_KEY_PREFIX` unless it is set; returns what RQ will use."""
    wanted = environ.setdefault("RQ_KEY_PREFIX", f"{environ.get('REDIS_KEY_PREFIX') or DEFAULT_KEY_PREFIX}:rq")
    loaded = sys.modules.get("rq.defaults")
    if loaded is not None and wanted != loaded.RQ_KEY_PREFIX:
        log.warning("rq was imported before bot: its keys start with %r, not %r", loaded.RQ_KEY_PREFIX, wanted)
    return wanted
