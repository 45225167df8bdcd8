"""Handlers only listen: no handler module imports another, and none checks a role itself.

The router (which registers the handlers and enforces each route's permission) and the shared
context are not handler modules.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

HANDLERS = Path(__file__).resolve().parents[2] / "handlers"
NOT_HANDLERS = {"__init__", "router", "context"}
ROLE_CHECKS = {"is_admin", "is_lead", "check", "has"}


def handler_modules(folder: Path) -> list[Path]:
    return sorted(p for p in folder.glob("*.py") if p.stem not in NOT_HANDLERS)


def imported_handlers(source: str, handler_names: set[str]) -> set[str]:
    """The handler modules `source` imports (absolute or relative)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found |= {a.name.split(".")[1] for a in node.names if a.name.startswith("handlers.")}
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level == 0 and module == "handlers" or node.level > 0 and not module:
                found |= {a.name for a in node.names}
            elif node.level == 0 and module.startswith("handlers."):
                found.add(module.split(".")[1])
            elif node.level > 0:
                found.add(module.split(".")[0])
    return found & handler_names


def role_checks(source: str) -> list[str]:
    """Calls such as `roles.require_admin(...)`, `runtime.roles.is_lead(...)`, `roles.check(...)`."""
    calls = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            name, owner = node.func.attr, node.func.value
            owner_name = owner.attr if isinstance(owner, ast.Attribute) else getattr(owner, "id", "")
            if name.startswith("require_") or name in {"is_admin", "is_lead"} or (
                    owner_name == "roles" and name in ROLE_CHECKS):
                calls.append(f"{ast.unparse(node.func)} (line {node.lineno})")
    return calls


def test_there_are_handler_modules_to_check() -> None:
    assert len(handler_modules(HANDLERS)) >= 5


@pytest.mark.parametrize("module", handler_modules(HANDLERS), ids=lambda p: p.stem)
def test_a_handler_imports_no_other_handler(module: Path) -> None:
    names = {p.stem for p in handler_modules(HANDLERS)}
    assert imported_handlers(module.read_text(), names - {module.stem}) == set()


@pytest.mark.parametrize("module", handler_modules(HANDLERS), ids=lambda p: p.stem)
def test_a_handler_checks_no_role_itself(module: Path) -> None:
    assert role_checks(module.read_text()) == []


@pytest.mark.parametrize("source", [
    "from handlers.fields import load_fields",
    "from handlers import fields",
    "import handlers.fields",
    "from .fields import load_fields",
    "from . import fields",
])
def test_every_form_of_import_is_caught(source: str) -> None:
    assert imported_handlers(source, {"fields"}) == {"fields"}


def test_imports_of_shared_modules_and_bot_are_allowed() -> None:
    assert imported_handlers("from handlers.context import Ctx\nfrom bot.steps import fields", {"fields"}) == set()


@pytest.mark.parametrize("source", [
    "ctx.runtime.roles.require_admin(ctx.user_id)",
    "runtime.roles.is_lead(user)",
    "roles.check(user, CONNECT)",
])
def test_every_role_check_is_caught(source: str) -> None:
    assert role_checks(source)


def test_reading_who_the_leads_are_is_not_a_role_check() -> None:
    assert role_checks("sorted(runtime.roles.leads)") == []
