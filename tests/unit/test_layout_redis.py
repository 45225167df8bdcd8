"""Redis has one room: outside `bot/store/`, no module imports `redis`, calls Redis directly or
builds a key name. RQ's classes may be used elsewhere (they are RQ's API, not Redis calls); the
queues and workers themselves are made by `bot.store.jobs`."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ROOM = ROOT / "bot" / "store"
KEY_BUILDERS = {"key", "global_key", "register_script"}
KEY_LITERAL = re.compile(r"^cd:|:global:")


def _modules() -> list[Path]:
    paths = [*sorted((ROOT / "bot").rglob("*.py")), *sorted((ROOT / "handlers").rglob("*.py"))]
    return [p for p in paths if ROOM not in p.parents]


KEY_PREFIX_NAMES = {"prefix", "key_prefix", "REDIS_KEY_PREFIX"}


def _mentions_prefix(node: ast.AST) -> bool:
    return any(
        (isinstance(n, ast.Name) and n.id in KEY_PREFIX_NAMES)
        or (isinstance(n, ast.Attribute) and n.attr in KEY_PREFIX_NAMES)
        for n in ast.walk(node)
    )


def violations(source: str) -> Iterator[str]:
    """What in `source` reaches Redis or names a key outside the store room, one line each."""
    for node in ast.walk(ast.parse(source)):
        line = getattr(node, "lineno", 0)
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in {"redis", "fakeredis"}:
                    yield f"{line}: imports {alias.name}"
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in {"redis", "fakeredis"}:
            yield f"{line}: imports from {node.module}"
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            func = node.func
            if isinstance(func.value, ast.Attribute) and func.value.attr == "redis":
                yield f"{line}: calls .redis.{func.attr}()"
            if func.attr in KEY_BUILDERS:
                yield f"{line}: calls {func.attr}()"
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in KEY_BUILDERS:
            yield f"{line}: calls {node.func.id}()"
        elif isinstance(node, ast.JoinedStr) and any(
            isinstance(v, ast.FormattedValue) and _mentions_prefix(v.value) for v in node.values
        ):
            yield f"{line}: formats a string with the key prefix"
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and KEY_LITERAL.search(node.value):
            yield f"{line}: key literal {node.value!r}"


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_redis_outside_the_store(path: Path) -> None:
    found = list(violations(path.read_text()))
    assert not found, f"{path.relative_to(ROOT)} reaches Redis outside bot/store/:\n" + "\n".join(found)


@pytest.mark.parametrize(
    "source",
    [
        "import redis",
        "from redis.lock import Lock",
        "store.redis.set(k, 1)",
        "store.key(team, 'run')",
        "client.register_script(LUA)",
        "name = f'{settings.REDIS_KEY_PREFIX}-sync'",
        "key = 'cd:global:marketo:token'",
    ],
)
def test_the_check_catches_each_kind(source: str) -> None:
    assert list(violations(source))
