"""`bot.flow` is the only writer of `Connection.state`: no other product module assigns it or passes it."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("bot", "handlers", "sandbox", "bench")
OWNER = ROOT / "bot" / "flow.py"


def _mentions_flow_state(node: ast.AST) -> bool:
    return any(isinstance(n, ast.Name) and n.id == "FlowState" for n in ast.walk(node))


def _is_connection(node: ast.AST) -> bool:
    """A name or attribute that says it is a connection (`connection`, `conn`, `self.connection` …)."""
    name = node.id if isinstance(node, ast.Name) else node.attr if isinstance(node, ast.Attribute) else ""
    return "conn" in name.lower()


def state_writes(source: str) -> list[str]:
    """The places in `source` that set a connection's state, as source text."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source)):
        targets: list[ast.AST] = []
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, ast.AugAssign | ast.AnnAssign):
            targets = [node.target]
        for target in targets:
            for part in ast.walk(target):
                if isinstance(part, ast.Attribute) and part.attr == "state" and (
                    _is_connection(part.value) or _mentions_flow_state(node)
                ):
                    found.append(ast.unparse(node))
        if isinstance(node, ast.Call):
            callee = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", "")
            for keyword in node.keywords:
                if keyword.arg == "state" and (callee == "Connection" or _mentions_flow_state(keyword.value)):
                    found.append(ast.unparse(node))
        if isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values, strict=True):
                if isinstance(key, ast.Constant) and key.value == "state" and _mentions_flow_state(value):
                    found.append(ast.unparse(node))
    return found


def test_only_the_state_machine_writes_a_connection_state() -> None:
    offenders = {
        str(path.relative_to(ROOT)): writes
        for package in PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
        if path != OWNER and (writes := state_writes(path.read_text()))
    }
    assert offenders == {}


def test_the_checker_sees_each_way_of_writing_the_state() -> None:
    assert state_writes("conn.state = FlowState.synced")
    assert state_writes("connection.run_id, connection.state = run.id, FlowState.syncing")
    assert state_writes("Connection(team_id='T', requester='U', state=FlowState.fields)")
    assert state_writes("current.model_copy(update={'state': FlowState.confirm})")
    assert state_writes("Connection.model_validate({**data, 'state': FlowState.cancelled})")
    assert state_writes("self.connection.state = new")
    assert state_writes("ckpt.state = EntityState.done") == []
    assert state_writes("if connection.state == FlowState.synced: pass") == []
