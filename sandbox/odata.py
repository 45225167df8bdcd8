"""OData `$filter` for the Dataverse emulator: a small parser for what the bot sends.

Comparisons (`eq ne gt ge lt le`, against strings, numbers, GUIDs, dates, `true`, `false`, `null`),
`contains` / `startswith` / `endswith`, `and`, `or`, `not` and parentheses, evaluated against a
record (a dict). Unknown properties and syntax errors raise `ODataError` with Dataverse's codes.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

_TOKEN = re.compile(
    r"\s*(?:(?P<lp>\()|(?P<rp>\))|(?P<comma>,)|(?P<str>'(?:[^']|'')*')"
    r"|(?P<dt>\d{4}-\d{2}-\d{2}T[0-9:.]+(?:Z|[+-]\d{2}:\d{2})?)|(?P<guid>[0-9a-fA-F]{8}-[0-9a-fA-F-]{27})"
    r"|(?P<num>-?\d+(?:\.\d+)?)|(?P<word>[A-Za-z_][A-Za-z0-9_./]*))"
)
Predicate = Callable[[dict[str, Any]], bool]
_KEYWORDS = {"true": True, "false": False, "null": None}


class ODataError(Exception):
    """An OData error the server answers with `status` and `{"error": {"code", "message"}}`."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def unknown_property(name: str, type_name: str) -> ODataError:
    return ODataError(400, "0x80060888", f"Could not find a property named '{name}' on type '{type_name}'.")


def _literal(kind: str, text: str) -> Any:
    if kind == "str":
        return text[1:-1].replace("''", "'")
    if kind == "dt":
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    if kind == "num":
        return float(text)
    if kind == "guid":
        return text.lower()
    if kind == "word" and text in _KEYWORDS:
        return _KEYWORDS[text]
    raise ODataError(400, "0x80060888", f"Syntax error in $filter near '{text}'.")


def _comparable(value: Any, literal: Any) -> Any:
    if isinstance(literal, datetime) and isinstance(value, str):
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    if isinstance(literal, str) and isinstance(value, str):
        return value.lower()  # Dataverse compares strings case-insensitively
    return value


_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "eq": lambda a, b: a == b, "ne": lambda a, b: a != b, "gt": lambda a, b: a > b,
    "ge": lambda a, b: a >= b, "lt": lambda a, b: a < b, "le": lambda a, b: a <= b,
}


class FilterParser:
    """Parses `$filter` into a predicate; `names` are the properties the predicate reads."""

    def __init__(self, text: str, known: set[str], type_name: str) -> None:
        self._tokens = [(m.lastgroup or "", m.group(m.lastgroup or 0)) for m in _TOKEN.finditer(text)]
        if "".join(t for _, t in self._tokens).replace(" ", "") != text.replace(" ", ""):
            raise ODataError(400, "0x80060888", f"Syntax error in $filter: {text}")
        self._pos = 0
        self._known = known
        self._type_name = type_name
        self._equalities: dict[Predicate, tuple[str, str]] = {}  # `prop eq 'text'` clauses: (prop, text)
        self._sets: dict[Predicate, tuple[str, frozenset[str]]] = {}  # their `or`s on one prop: (prop, texts)
        self.names: set[str] = set()
        self.predicate = self._or()
        if self._pos != len(self._tokens):
            raise ODataError(400, "0x80060888", f"Syntax error in $filter at '{self._peek()[1]}'.")
        equality = self._equalities.get(self.predicate)
        # The whole filter as (prop, texts) when it only looks values up in one text column (lower case).
        self.membership = (equality[0], frozenset({equality[1]})) if equality else self._sets.get(self.predicate)

    def _peek(self) -> tuple[str, str]:
        return self._tokens[self._pos] if self._pos < len(self._tokens) else ("", "")

    def _take(self, kind: str | None = None, word: str | None = None) -> str:
        got_kind, text = self._peek()
        if (kind and got_kind != kind) or (word and text.lower() != word):
            raise ODataError(400, "0x80060888", f"Syntax error in $filter near '{text}'.")
        self._pos += 1
        return text

    def _is_word(self, word: str) -> bool:
        kind, text = self._peek()
        return kind == "word" and text.lower() == word

    def _or(self) -> Predicate:
        parts = [self._and()]
        while self._is_word("or"):
            self._take()
            parts.append(self._and())
        if len(parts) == 1:
            return parts[0]
        return self._membership(parts) or (lambda r: any(p(r) for p in parts))

    def _membership(self, parts: list[Predicate]) -> Predicate | None:
        """`p eq 'a' or p eq 'b' or ...` (ids looked up hundreds at a time) as one set lookup: the same
        answer as testing each clause, in one step per row."""
        clauses = [self._equalities.get(part) for part in parts]
        props = {clause[0] for clause in clauses if clause is not None}
        if None in clauses or len(props) != 1:
            return None
        (prop,) = props
        wanted = frozenset(clause[1] for clause in clauses if clause is not None)

        def predicate(record: dict[str, Any]) -> bool:
            value = record.get(prop)
            return isinstance(value, str) and value.lower() in wanted

        self._sets[predicate] = (prop, wanted)
        return predicate

    def _and(self) -> Predicate:
        parts = [self._unary()]
        while self._is_word("and"):
            self._take()
            parts.append(self._unary())
        return parts[0] if len(parts) == 1 else (lambda r: all(p(r) for p in parts))

    def _unary(self) -> Predicate:
        if self._is_word("not"):
            self._take()
            inner = self._unary()
            return lambda r: not inner(r)
        if self._peek()[0] == "lp":
            self._take("lp")
            inner = self._or()
            self._take("rp")
            return inner
        return self._comparison()

    def _property(self) -> str:
        name = self._take("word")
        if name not in self._known:
            raise unknown_property(name, self._type_name)
        self.names.add(name)
        return name

    def _comparison(self) -> Predicate:
        name = self._take("word")
        if name.lower() in {"contains", "startswith", "endswith"}:
            self._take("lp")
            prop = self._property()
            self._take("comma")
            needle = str(_literal("str", self._take("str"))).lower()
            self._take("rp")
            test = {"contains": str.__contains__, "startswith": str.startswith, "endswith": str.endswith}[name.lower()]
            return lambda r: isinstance(r.get(prop), str) and test(r[prop].lower(), needle)
        self._pos -= 1
        prop = self._property()
        op = self._take("word").lower()
        if op not in _OPS:
            raise ODataError(400, "0x80060888", f"Unknown operator '{op}' in $filter.")
        kind, text = self._peek()
        self._pos += 1
        literal = _literal(kind, text)
        literal = literal.lower() if isinstance(literal, str) else literal
        compare = _OPS[op]
        if literal is None:
            return lambda r: compare(r.get(prop), None) if op in {"eq", "ne"} else False

        def predicate(record: dict[str, Any]) -> bool:
            value = record.get(prop)
            return value is not None and compare(_comparable(value, literal), literal)

        if op == "eq" and isinstance(literal, str):
            self._equalities[predicate] = (prop, literal)
        return predicate
