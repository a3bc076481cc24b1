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
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from twin.errors import LimitError, RequestError
from twin.sta.entities import ENTITY_SETS, EntitySet, Relation
from twin.sta.limits import ENV, MAX_INT, StaLimits
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
    def __init__(self, text: str, limits: StaLimits) -> None:
        self.limits = limits
        self.tokens = _tokens(text)
        self.pos = 0
        self.depth = 0

    def deeper(self) -> None:
        """One level further in (a parenthesis, ``not``, a call, a chained operator)."""
        self.depth += 1
        if self.depth > self.limits.filter_max_depth:
            raise LimitError(
                ENV["filter_max_depth"],
                self.limits.filter_max_depth,
                f"$filter nests deeper than {self.limits.filter_max_depth} levels "
                "(parentheses, not, function calls and chained arithmetic each count one)",
            )

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
        # and/or chains are flat lists (``("or", [a, b, c])``), never a deep tree
        items = [self.and_()]
        while self.word("or"):
            items.append(self.and_())
        return items[0] if len(items) == 1 else ("or", items)

    def and_(self) -> Node:
        items = [self.not_()]
        while self.word("and"):
            items.append(self.not_())
        return items[0] if len(items) == 1 else ("and", items)

    def not_(self) -> Node:
        if self.word("not"):
            outer = self.depth
            self.deeper()
            node = ("not", self.not_())
            self.depth = outer
            return node
        return self.compare()

    def compare(self) -> Node:
        left = self.arith()
        op = self.word(*_COMPARE)
        if op is None:
            return left
        return ("cmp", op, left, self.arith())

    def arith(self) -> Node:
        outer = self.depth
        node = self.primary()
        while (op := self.word(*_ARITH)) is not None:
            self.deeper()  # a chain is a left-deep tree: each operator one level
            node = ("arith", op, node, self.primary())
        self.depth = outer
        return node

    def primary(self) -> Node:
        kind, value = self.take()
        if kind == "punct" and value == "(":
            outer = self.depth
            self.deeper()
            node = self.or_()
            self.expect(")")
            self.depth = outer
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
                outer = self.depth
                self.deeper()
                args: list[Node] = []
                if self.peek() != ("punct", ")"):
                    args.append(self.or_())
                    while self.peek() == ("punct", ","):
                        self.take()
                        args.append(self.or_())
                self.expect(")")
                self.depth = outer
                if value == "now" and not args:
                    return ("lit", now_us())
                if value not in _FUNCTIONS:
                    raise RequestError(f"$filter: unknown function {value!r}")
                return ("call", value, args)
            return ("path", tuple(value.split("/")))
        raise RequestError(f"$filter: unexpected {value!r}")


def _terms(node: Node) -> int:
    """How many conditions (comparisons and boolean functions) a tree holds."""
    head = node[0]
    if head in ("and", "or"):
        return sum(_terms(item) for item in node[1])
    if head == "not":
        return _terms(node[1])
    return 1


def parse_filter(text: str, limits: StaLimits | None = None) -> Node:
    """The syntax tree of a ``$filter`` expression, within ``limits``.

    ``and`` and ``or`` chains are one node each, ``("or", [a, b, c])``.

    Raises
    ------
    LimitError
        If the expression is longer, deeper or holds more conditions than ``limits`` allow.
    RequestError
        If the expression cannot be read.
    """
    limits = limits if limits is not None else StaLimits()
    if len(text) > limits.filter_max_chars:
        raise LimitError(
            ENV["filter_max_chars"],
            limits.filter_max_chars,
            f"$filter is {len(text)} characters long, more than {limits.filter_max_chars}",
        )
    tree = _Parser(text, limits).parse()
    terms = _terms(tree)
    if terms > limits.filter_max_terms:
        raise LimitError(
            ENV["filter_max_terms"],
            limits.filter_max_terms,
            f"$filter holds {terms} conditions, more than {limits.filter_max_terms} "
            "(OR-ed equalities of one property, id eq 1 or id eq 2, count one each)",
        )
    return tree


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


#: the ``WHERE`` fragment limiting an entity set to what the caller may see
Scope = Callable[[EntitySet], tuple[str, list[Any]]]


class FilterCompiler:
    """Compiles filter trees against one entity set for one engine.

    Parameters
    ----------
    postgres : whether the SQL is for PostgreSQL (JSON paths are spelled differently)
    limits : how long, deep and large a ``$filter`` may be
    """

    def __init__(self, postgres: bool, limits: StaLimits | None = None) -> None:
        self.postgres = postgres
        self.limits = limits if limits is not None else StaLimits()
        self._scope: Scope | None = None

    def compile(
        self, entities: EntitySet, text: str, scope: Scope | None = None
    ) -> tuple[str, list[Any]]:
        """``WHERE`` fragment and parameters of ``text`` on ``entities``; every entity set
        a condition navigates to is limited by ``scope`` (a pilot's filter never reads
        another unit's rows through a relation).

        Raises
        ------
        LimitError
            If the expression is beyond a bound of ``limits``.
        RequestError
            If the expression cannot be read or names an unknown property.
        """
        compiler = self
        if scope is not None:
            compiler = FilterCompiler(self.postgres, self.limits)
            compiler._scope = scope
        sql = compiler._bool(entities, parse_filter(text, self.limits))
        return sql.text, sql.params

    def _bool(self, entities: EntitySet, node: Node) -> _Sql:
        head = node[0]
        if head in ("and", "or"):
            items = node[1]
            parts = self._in_lists(entities, items) if head == "or" else []
            parts += [self._bool(entities, item) for item in items if not _is_listed(item)]
            return _balanced(parts, head.upper())
        if head == "not":
            inner = self._bool(entities, node[1])
            return _Sql(f"(NOT {inner.text})", inner.params)
        if head in ("cmp", "call"):
            return self._atom(entities, node)
        raise RequestError("$filter: the expression is not a condition")

    def _in_lists(self, entities: EntitySet, items: list[Node]) -> list[_Sql]:
        """``IN`` lists of the OR-ed equalities of one property with a literal
        (``id eq 1 or id eq 2`` -> ``id IN (?, ?)``)."""
        groups: dict[tuple[tuple[str, ...], bool], list[Any]] = {}
        for item in items:
            if _is_listed(item):
                path, value = _listed(item)
                groups.setdefault((path, _is_number(value)), []).append(value)
        out = []
        for (path, numeric), values in groups.items():
            column = self._value(entities, ("path", path), ("lit", 0) if numeric else None)
            marks = ", ".join("?" for _ in values)
            params = [int(v) if isinstance(v, bool) else v for v in values]
            out.append(_Sql(f"({column.text} IN ({marks}))", params))
        return out

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
            if self._scope is not None:
                limit, limit_params = self._scope(target)
                inner = _Sql(f"({inner.text} AND {limit})", inner.params + limit_params)
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


def _is_listed(node: Node) -> bool:
    """Whether ``node`` is ``path eq literal`` (or ``literal eq path``) on the entity's own
    property, with a literal that is not null: a member of an ``IN`` list."""
    if node[0] != "cmp" or node[1] != "eq":
        return False
    left, right = node[2], node[3]
    if left[0] == "lit":
        left, right = right, left
    return left[0] == "path" and len(left[1]) == 1 and right[0] == "lit" and right[1] is not None


def _listed(node: Node) -> tuple[tuple[str, ...], Any]:
    left, right = node[2], node[3]
    if left[0] == "lit":
        left, right = right, left
    return left[1], right[1]


def _balanced(parts: list[_Sql], word: str) -> _Sql:
    """``parts`` joined by ``word`` as a balanced tree: the SQL nests ``log2(n)`` deep, not
    ``n`` (SQLite's parser and expression depth are bounded)."""
    if len(parts) == 1:
        return parts[0]
    middle = len(parts) // 2
    left, right = _balanced(parts[:middle], word), _balanced(parts[middle:], word)
    return _Sql(f"({left.text} {word} {right.text})", left.params + right.params)


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
