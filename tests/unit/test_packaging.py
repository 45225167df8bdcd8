"""`pip install .` (what the Docker image runs) ships the bot and nothing of the emulators.

The emulators and the demo are their own distribution (`sandbox/pyproject.toml`); production code
may reach them only through the lazy import in the `demo` command.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import tomllib
from fnmatch import fnmatchcase
from pathlib import Path

import pytest

from bot.config import MissingSetting, Settings
from bot.container import Container

ROOT = Path(__file__).resolve().parents[2]
EMULATOR_ONLY = {"fakeredis", "trustme", "aiosmtpd", "websockets"}
FORBIDDEN_IMPORTS = EMULATOR_ONLY | {"sandbox"}
ALLOWED = {("bot/cli.py", "demo", "sandbox.demo")}  # (file, enclosing function, module)


def _pyproject(path: Path) -> dict:
    return tomllib.loads(path.read_text())


def _names(requirements: list[str]) -> set[str]:
    """Distribution names of PEP 508 requirements, normalised (`Foo_Bar[x]>=1` -> `foo-bar`)."""
    return {re.sub(r"[-_.]+", "-", re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", r).group(1)).lower()
            for r in requirements}


def _packages(project: dict) -> set[str]:
    """The packages setuptools puts in the wheel: an explicit list, or what `packages.find` finds."""
    setuptools = project.get("tool", {}).get("setuptools", {})
    if isinstance(setuptools.get("packages"), list):
        return set(setuptools["packages"])
    find = setuptools.get("packages", {}).get("find", {})
    include, exclude = find.get("include", ["*"]), find.get("exclude", [])
    found = {".".join(init.parent.relative_to(ROOT).parts) for init in ROOT.rglob("__init__.py")
             if ".venv" not in init.parts}
    return {name for name in found
            if any(fnmatchcase(name, p) for p in include) and not any(fnmatchcase(name, p) for p in exclude)}


def test_production_dependencies_name_no_emulator_library() -> None:
    project = _pyproject(ROOT / "pyproject.toml")["project"]
    assert not _names(project["dependencies"]) & EMULATOR_ONLY


def test_no_extra_makes_pip_look_the_sandbox_up_on_an_index() -> None:
    extras = _pyproject(ROOT / "pyproject.toml")["project"].get("optional-dependencies", {})
    sandbox_name = _pyproject(ROOT / "sandbox" / "pyproject.toml")["project"]["name"]
    for extra, requirements in extras.items():
        assert sandbox_name not in _names(requirements), extra


def test_the_wheel_holds_the_bot_and_not_the_sandbox() -> None:
    packages = _packages(_pyproject(ROOT / "pyproject.toml"))
    assert {"bot", "handlers"} <= packages
    assert not [p for p in packages if p.split(".")[0] in {"sandbox", "tests", "bench"}]


def test_the_sandbox_distribution_carries_the_emulator_libraries() -> None:
    sandbox = _pyproject(ROOT / "sandbox" / "pyproject.toml")
    assert _names(sandbox["project"]["dependencies"]) >= EMULATOR_ONLY
    assert _packages(sandbox) == {"sandbox"}


def _imports(path: Path) -> list[tuple[str, str]]:
    """(enclosing function or "", imported module) for every absolute import in a file."""
    found: list[tuple[str, str]] = []

    def visit(node: ast.AST, function: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Import):
                found.extend((function, alias.name) for alias in child.names)
            elif isinstance(child, ast.ImportFrom) and child.level == 0 and child.module:
                found.append((function, child.module))
            visit(child, child.name if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef) else function)

    visit(ast.parse(path.read_text(), str(path)), "")
    return found


def test_production_code_imports_no_emulator() -> None:
    offending = [
        (rel, function, module)
        for folder in ("bot", "handlers")
        for path in sorted((ROOT / folder).rglob("*.py"))
        for rel in [path.relative_to(ROOT).as_posix()]
        for function, module in _imports(path)
        if module.split(".")[0] in FORBIDDEN_IMPORTS and (rel, function, module) not in ALLOWED
    ]
    assert offending == []


def test_the_demo_command_is_the_one_way_in() -> None:
    assert ("demo", "sandbox.demo") in _imports(ROOT / "bot" / "cli.py")


def test_the_demo_without_the_sandbox_says_how_to_install_it() -> None:
    hide_sandbox = "import sys; sys.modules['sandbox'] = None; from bot.cli import main; main(['demo'])"
    result = subprocess.run([sys.executable, "-c", hide_sandbox], cwd=ROOT, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [
        "connect-dynamics: the demo needs the emulators, which are not installed: "
        "run `pip install ./sandbox` from the repository (or `make demo`)."
    ]


def test_production_has_no_embedded_store() -> None:
    """Without REDIS_URL (and no client handed in) the bot stops with one line; it never falls back."""
    with pytest.raises(MissingSetting, match="REDIS_URL"):
        Container(Settings(REDIS_URL=None))
