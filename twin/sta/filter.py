"""``$filter`` of SensorThings (OData) compiled to a SQL ``WHERE`` fragment with parameters.

Supported: comparisons ``eq ne gt ge lt le``; ``and or not`` and parentheses; arithmetic
``add sub mul div``; string literals (``'it''s'``), numbers, ``true/false/null``, ISO 8601
times unquoted (``phenomenonTime ge 2026-11-26T10:00:00Z``) and ``now()``; the functions
``startswith endswith substringof contains tolower toupper length``; property paths into JSON
(``properties/cimCode``, ``unitOfMeasurement/symbol``) and navigation
(``Datastream/ObservedProperty/name eq 'water depth'``, ``Datastreams/name eq 'x'``).
Times compare as microseconds since the epoch, the way they are stored.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from twin.errors import RequestError
from twin.sta.entities import ENTITY_SETS, EntitySet, Relation
from twin.sta.limits import MAX_INT
from twin.times import now_us, parse_time

_TOKEN = re.compile(
    r"""\s*(?:
      (?P<time>\d{4}-\d{2}-\d{2}T[0-9:.]+(?:Z|[+-]\d{2}:\d{2})?)
    | (?P<number>-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)
    | (?P<string>'(?:[^']|'')*')
    | (?P<name>[A-Za-z@_][A-Za-z0-9@._/]*)
    | (?P<punct>[(),])
    )""",
    re.VERBOSE,
)
_COMPARE = {"eq": "=", "ne": "<>", "gt": ">", "ge": ">=", "lt": "<", "le": "<="}
_ARITH = {"add": "+", "sub": "-", "mul": "*", "div": "/"}
_FUNCTIONS = {"startswith", "endswith", "substringof", "contains", "tolower", "toupper", "length"}
#: JSON property paths stored in their own column.
_LINK_COLUMNS = {("properties", "cimCode"): "code", ("properties", "cimSite"): "site"}

Node = tuple[Any, ...]


def _tokens(text: str) -> list[tuple[str, str]]:
    out = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None or match.end() == pos:
            raise RequestError(f"$filter: cannot read {text[pos : pos + 30]!r}")
        kind = match.lastgroup
        assert kind is not None
        out.append((kind, match.group(kind)))
        pos = match.end()
        while pos < len(text) and text[pos].isspace():
            pos += 1
    return out


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = _tokens(text)
        self.pos = 0

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self) -> tuple[str, str]:
        token = self.peek()
        if token is None:
            raise RequestError("$filter: unexpected end")
        self.pos += 1
        return token

    def expect(self, value: str) -> None:
        token = self.take()
        if token[1] != value:
            raise RequestError(f"$filter: expected {value!r}, got {token[1]!r}")

    def word(self, *words: str) -> str | None:
        token = self.peek()
        if token is not None and token[0] == "name" and token[1] in words:
            self.pos += 1
            return token[1]
        return None

    def parse(self) -> Node:
        node = self.or_()
        if self.peek() is not None:
            raise RequestError(f"$filter: unexpected {self.peek()[1]!r}")  # type: ignore[index]
        return node

    def or_(self) -> Node:
        node = self.and_()
        while self.word("or"):
            node = ("or", node, self.and_())
        return node

    def and_(self) -> Node:
        node = self.not_()
        while self.word("and"):
            node = ("and", node, self.not_())
        return node

    def not_(self) -> Node:
        if self.word("not"):
            return ("not", self.not_())
        return self.compare()

    def compare(self) -> Node:
        left = self.arith()
        op = self.word(*_COMPARE)
        if op is None:
            return left
        return ("cmp", op, left, self.arith())

    def arith(self) -> Node:
        node = self.primary()
        while (op := self.word(*_ARITH)) is not None:
            node = ("arith", op, node, self.primary())
        return node

    def primary(self) -> Node:
        kind, value = self.take()
        if kind == "punct" and value == "(":
            node = self.or_()
            self.expect(")")
            return node
        if kind == "string":
            return ("lit", value[1:-1].replace("''", "'"))
        if kind == "number":
            if any(c in value for c in ".eE"):
                return ("lit", float(value))
            number = int(value)
            if not -MAX_INT - 1 <= number <= MAX_INT:
                raise RequestError(
                    f"$filter: the integer {number} is beyond the 64-bit range of the store "
                    f"(write it as a decimal, {number:.3e}, to compare with a number)"
                )
            return ("lit", number)
        if kind == "time":
            try:
                return ("lit", parse_time(value))
            except ValueError as exc:
                raise RequestError(f"$filter: {exc}") from None
        if kind == "name":
            if value in ("true", "false"):
                return ("lit", value == "true")
            if value == "null":
                return ("lit", None)
            token = self.peek()
            if token == ("punct", "("):
                self.take()
                args: list[Node] = []
                if self.peek() != ("punct", ")"):
                    args.append(self.or_())
                    while self.peek() == ("punct", ","):
                        self.take()
                        args.append(self.or_())
                self.expect(")")
                if value == "now" and not args:
                    return ("lit", now_us())
                if value not in _FUNCTIONS:
                    raise RequestError(f"$filter: unknown function {value!r}")
                return ("call", value, args)
            return ("path", tuple(value.split("/")))
        raise RequestError(f"$filter: unexpected {value!r}")


def parse_filter(text: str) -> Node:
    """The syntax tree of a ``$filter`` expression.

    Raises
    ------
    RequestError
        If the expression cannot be read.
    """
    return _Parser(text).parse()


@dataclass
class _Sql:
    text: str
    params: list[Any]


def _paths(node: Node) -> list[tuple[str, ...]]:
    if node[0] == "path":
        return [node[1]]
    out: list[tuple[str, ...]] = []
    for child in node[1:]:
        if isinstance(child, tuple) and child and isinstance(child[0], str):
            out.extend(_paths(child))
        elif isinstance(child, list):
            for item in child:
                out.extend(_paths(item))
    return out


def _strip(node: Node, count: int) -> Node:
    if node[0] == "path":
        return ("path", node[1][count:])
    parts: list[Any] = [node[0]]
    for child in node[1:]:
        if isinstance(child, tuple) and child and isinstance(child[0], str):
            parts.append(_strip(child, count))
        elif isinstance(child, list):
            parts.append([_strip(item, count) for item in child])
        else:
            parts.append(child)
    return tuple(parts)


class FilterCompiler:
    """Compiles filter trees against one entity set for one engine.

    Parameters
    ----------
    postgres : whether the SQL is for PostgreSQL (JSON paths are spelled differently)
    """

    def __init__(self, postgres: bool) -> None:
        self.postgres = postgres

    def compile(self, entities: EntitySet, text: str) -> tuple[str, list[Any]]:
        """``WHERE`` fragment and parameters of ``text`` on ``entities``.

        Raises
        ------
        RequestError
            If the expression cannot be read or names an unknown property.
        """
        sql = self._bool(entities, parse_filter(text))
        return sql.text, sql.params

    def _bool(self, entities: EntitySet, node: Node) -> _Sql:
        head = node[0]
        if head in ("and", "or"):
            left, right = self._bool(entities, node[1]), self._bool(entities, node[2])
            return _Sql(f"({left.text} {head.upper()} {right.text})", left.params + right.params)
        if head == "not":
            inner = self._bool(entities, node[1])
            return _Sql(f"(NOT {inner.text})", inner.params)
        if head in ("cmp", "call"):
            return self._atom(entities, node)
        raise RequestError("$filter: the expression is not a condition")

    def _atom(self, entities: EntitySet, node: Node) -> _Sql:
        """A comparison or boolean function; navigation prefixes become subqueries."""
        paths = _paths(node)
        navs = {p[0] for p in paths if len(p) > 1 and entities.relation(p[0]) is not None}
        if len(navs) > 1:
            raise RequestError("$filter: one condition may navigate one relation only")
        if navs:
            relation = entities.relation(navs.pop())
            assert relation is not None
            if any(p[0] != relation.name for p in paths):
                raise RequestError("$filter: one condition may navigate one relation only")
            target = ENTITY_SETS[relation.target]
            inner = self._atom(target, _strip(node, 1))
            return _Sql(_reverse(relation, entities.table, target.table, inner.text), inner.params)
        if node[0] == "call":
            return self._call(entities, node, boolean=True)
        _, op, left, right = node
        a, b = self._value(entities, left, right), self._value(entities, right, left)
        if b.text == "NULL" or a.text == "NULL":
            other = a if b.text == "NULL" else b
            word = "IS NULL" if op == "eq" else "IS NOT NULL"
            if op not in ("eq", "ne"):
                raise RequestError("$filter: null compares only with eq or ne")
            return _Sql(f"({other.text} {word})", other.params)
        return _Sql(f"({a.text} {_COMPARE[op]} {b.text})", a.params + b.params)

    def _value(self, entities: EntitySet, node: Node, other: Node | None = None) -> _Sql:
        head = node[0]
        if head == "lit":
            if node[1] is None:
                return _Sql("NULL", [])
            value = node[1]
            if isinstance(value, bool):
                value = int(value)
            return _Sql("?", [value])
        if head == "path":
            numeric = other is not None and other[0] == "lit" and _is_number(other[1])
            return _Sql(self._column(entities, node[1], numeric), [])
        if head == "arith":
            a, b = self._value(entities, node[2]), self._value(entities, node[3])
            return _Sql(f"({a.text} {_ARITH[node[1]]} {b.text})", a.params + b.params)
        if head == "call":
            return self._call(entities, node, boolean=False)
        raise RequestError("$filter: a condition cannot stand where a value is expected")

    def _call(self, entities: EntitySet, node: Node, boolean: bool) -> _Sql:
        _, name, args = node
        values = [self._value(entities, a) for a in args]
        params = [p for v in values for p in v.params]
        arity = {"tolower": 1, "toupper": 1, "length": 1}.get(name, 2)
        if len(values) != arity:
            raise RequestError(f"$filter: {name} takes {arity} argument(s)")
        if name in ("tolower", "toupper", "length"):
            if boolean:
                raise RequestError(f"$filter: {name}(...) is not a condition")
            fn = {"tolower": "LOWER", "toupper": "UPPER", "length": "LENGTH"}[name]
            return _Sql(f"{fn}({values[0].text})", params)
        if not boolean:
            raise RequestError(f"$filter: {name}(...) is a condition, not a value")
        if name == "substringof":
            values.reverse()
            params = values[0].params + values[1].params
        pattern = {
            "startswith": "? || '%'",
            "endswith": "'%' || ?",
            "substringof": "'%' || ? || '%'",
            "contains": "'%' || ? || '%'",
        }[name]
        needle = values[1]
        if needle.text != "?" or not isinstance(needle.params[0], str):
            raise RequestError(f"$filter: {name} needs a string literal to look for")
        escaped = needle.params[0].replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        return _Sql(f"({values[0].text} LIKE {pattern} ESCAPE '\\')", [*values[0].params, escaped])

    def _column(self, entities: EntitySet, path: tuple[str, ...], numeric: bool) -> str:
        head = path[0]
        if head in ("id", "@iot.id") and len(path) == 1:
            return "id"
        if path[:2] in _LINK_COLUMNS and entities.name in ("Things", "Datastreams"):
            return _LINK_COLUMNS[path[:2]]  # type: ignore[index]
        field = entities.field(head)
        if field is None:
            raise RequestError(f"$filter: {entities.singular} has no property {head!r}")
        if len(path) == 1:
            if field.kind == "json":
                raise RequestError(f"$filter: {head} is an object; name a member ({head}/...)")
            return field.column
        if field.kind != "json":
            raise RequestError(f"$filter: {head} has no members")
        keys = path[1:]
        if not all(re.fullmatch(r"[A-Za-z0-9_]+", k) for k in keys):
            raise RequestError(f"$filter: bad property path {'/'.join(path)!r}")
        if self.postgres:
            text = f"({field.column}::jsonb #>> '{{{','.join(keys)}}}')"
            return f"CAST({text} AS DOUBLE PRECISION)" if numeric else text
        return f"json_extract({field.column}, '$.{'.'.join(keys)}')"


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _reverse(relation: Relation, source_table: str, target_table: str, condition: str) -> str:
    """``WHERE`` fragment on the source rows whose related target rows satisfy
    ``condition``."""
    if relation.source_fk is not None:
        return f"{relation.source_fk} IN (SELECT id FROM {target_table} WHERE {condition})"
    if relation.target_fk is not None:
        return f"id IN (SELECT {relation.target_fk} FROM {target_table} WHERE {condition})"
    assert relation.link is not None
    table, source_col, target_col = relation.link
    return (
        f"id IN (SELECT {source_col} FROM {table} WHERE {target_col} IN "
        f"(SELECT id FROM {target_table} WHERE {condition}))"
    )
