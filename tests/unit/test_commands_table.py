"""One table of subcommands (`bot.commands`): the router routes it, `help` prints it, the README lists it."""

from __future__ import annotations

import re
from pathlib import Path

from bot.commands import COMMAND, SUBCOMMANDS, WHO, by_name
from bot.views.common import help_text
from handlers.commands import HANDLERS
from handlers.commands import SUBCOMMANDS as ROUTES

ROOT = Path(__file__).resolve().parents[2]
README_ROW = re.compile(r"^\| `(?P<usage>/connect-dynamics[^`]*)` \| (?P<who>[^|]+) \|")


def readme_commands() -> dict[str, str]:
    """The README's command table ("Using it"): usage -> who."""
    text = (ROOT / "README.md").read_text()
    section = text.split("\n## Using it\n", 1)[1].split("\n## ", 1)[0]
    return {m["usage"]: m["who"].strip() for line in section.splitlines() if (m := README_ROW.match(line))}


def test_the_readme_lists_exactly_the_subcommands_and_who_may_use_them() -> None:
    assert readme_commands() == {sub.usage: WHO[sub.permission.role] for sub in SUBCOMMANDS}


def test_the_router_routes_every_name_with_its_permission() -> None:
    assert set(ROUTES) == set(by_name())
    for name, sub in by_name().items():
        assert ROUTES[name].permission == sub.permission, name
        assert ROUTES[name].handler is HANDLERS[sub.name], name


def test_every_subcommand_has_a_handler_and_every_handler_a_subcommand() -> None:
    assert set(HANDLERS) == {sub.name for sub in SUBCOMMANDS}


def test_help_has_one_line_per_subcommand_with_who_may_use_it() -> None:
    lines = [line for line in help_text().splitlines() if line.startswith("• ")]
    assert len(lines) == len(SUBCOMMANDS)
    for line, sub in zip(lines, SUBCOMMANDS, strict=True):
        assert line.startswith(f"• `{sub.usage}` — ") and line.endswith(f"({WHO[sub.permission.role]}).")
    assert "resume" in help_text() and "audit" in help_text()


def test_the_bare_command_is_first_and_aliases_are_unique() -> None:
    assert SUBCOMMANDS[0].usage == COMMAND
    names = [name for sub in SUBCOMMANDS for name in (sub.name, *sub.aliases)]
    assert len(names) == len(set(names))


def test_no_code_cites_documents_that_are_not_in_the_repository() -> None:
    citing = re.compile(r"DESIGN(\.md| step)|reference/|(external-apis|slack-platform|sync-more)\.md")
    found = [f"{path.relative_to(ROOT)}:{number}"
             for folder in ("bot", "handlers", "sandbox")
             for path in sorted((ROOT / folder).rglob("*.py"))
             for number, line in enumerate(path.read_text().splitlines(), start=1) if citing.search(line)]
    assert found == []
