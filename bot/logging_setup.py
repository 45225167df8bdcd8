"""How every process logs: plain text (the default) or, with `LOG_FORMAT=json`, one JSON object per line.

A sync job puts its run, entity and team into the log context (`sync_context`); every line logged
while it runs carries them, from the job's thread and from the threads it starts with `carried`
(a new thread does not inherit the starting thread's context by itself). Only those ids and the
message go out: no request bodies, tokens or credentials are ever put into a log record here.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import json
import logging
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

CONTEXT_FIELDS = ("run_id", "entity", "team_id", "connection_id")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

_context: contextvars.ContextVar[dict[str, str] | None] = contextvars.ContextVar("log_context", default=None)


@contextlib.contextmanager
def sync_context(**fields: str) -> Iterator[None]:
    """Log lines of this thread (and of threads started with `carried`) carry `fields` until the end."""
    token = _context.set({**(_context.get() or {}), **{k: v for k, v in fields.items() if k in CONTEXT_FIELDS}})
    try:
        yield
    finally:
        _context.reset(token)


def carried(target: Callable[..., Any]) -> Callable[..., Any]:
    """`target`, run in a copy of the caller's log context: a thread's target, so its lines carry it."""
    return functools.partial(contextvars.copy_context().run, target)


class ContextFilter(logging.Filter):
    """Puts the current log context's fields on each record (as attributes)."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, value in (_context.get() or {}).items():
            setattr(record, name, value)
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ISO 8601), level, logger, message, the context fields
    that are set, and the exception's traceback text when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in CONTEXT_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                line[name] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


def configure(log_format: str = "text", level: int = logging.INFO) -> None:
    """One handler on the root logger (replacing any), in the chosen format; httpx is kept at WARNING
    because it logs request URLs at INFO, and a URL may carry a secret."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT))
    handler.addFilter(ContextFilter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    logging.getLogger("httpx").setLevel(logging.WARNING)
