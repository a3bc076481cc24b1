"""SWMM control rules (``[CONTROLS]``) parsed into premises and actions the rule actor applies.

Supported premises: ``NODE id DEPTH|HEAD|INFLOW op value``, ``LINK|CONDUIT|PUMP|ORIFICE|WEIR
id FLOW op value``, ``PUMP id STATUS op ON|OFF``, ``SIMULATION TIME op hours`` and
``SIMULATION CLOCKTIME op H:MM``, joined by AND / OR. Actions: ``PUMP id STATUS = ON|OFF``,
``PUMP|ORIFICE|WEIR id SETTING = value``, ``CONDUIT id STATUS = OPEN|CLOSED``. Values are in
the file's units and converted here. A rule outside this set is refused with its name.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass

from cim.errors import SourceError
from scenarios.flood.network import Network
from scenarios.flood.units import unit_system

_OPS: dict[str, Callable[[float, float], bool]] = {
    "=": operator.eq,
    "<>": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


@dataclass(frozen=True)
class Premise:
    """``subject`` (kind, id, attribute) compared with ``value`` (SI)."""

    kind: str
    name: str
    attribute: str
    op: str
    value: float
    joiner: str = "AND"


@dataclass(frozen=True)
class Action:
    """Set ``attribute`` (STATUS or SETTING) of link ``name`` of ``kind`` to ``value``."""

    kind: str
    name: str
    attribute: str
    value: float


@dataclass(frozen=True)
class Rule:
    """One rule: premises, THEN and ELSE actions, priority."""

    name: str
    premises: tuple[Premise, ...]
    then: tuple[Action, ...]
    otherwise: tuple[Action, ...]
    priority: float

    def holds(self, read: Callable[[Premise], float]) -> bool:
        """Evaluate the premises left to right with AND/OR as SWMM does."""
        result = True
        for k, premise in enumerate(self.premises):
            value = _OPS[premise.op](read(premise), premise.value)
            if k == 0:
                result = value
            elif premise.joiner == "OR":
                result = result or value
            else:
                result = result and value
        return result


def _time_value(text: str) -> float:
    if ":" in text:
        parts = [float(p) for p in text.split(":")] + [0.0, 0.0]
        return parts[0] * 3600 + parts[1] * 60 + parts[2]
    return float(text) * 3600.0


def parse_rules(net: Network) -> list[Rule]:
    """Parse ``net.rules`` into :class:`Rule` objects, sorted by priority (lowest first).

    Raises
    ------
    cim.errors.SourceError
        If a rule uses a form not listed in the module docstring or names an unknown object.
    """
    units = unit_system(net.options.flow_units)
    rules: list[Rule] = []
    for text in net.rules:
        tokens = text.split()
        name = tokens[1] if len(tokens) > 1 else "?"

        def fail(message: str, rule: str = name) -> SourceError:
            return SourceError(net.path, f"[CONTROLS] rule {rule}: {message}", rule)

        premises: list[Premise] = []
        then: list[Action] = []
        otherwise: list[Action] = []
        priority = 0.0
        i = 2
        section = ""
        joiner = "AND"
        while i < len(tokens):
            word = tokens[i].upper()
            if word in ("IF", "THEN", "ELSE"):
                section, joiner = word, "AND"
                i += 1
                continue
            if word in ("AND", "OR"):
                joiner = word
                i += 1
                continue
            if word == "PRIORITY":
                priority = float(tokens[i + 1])
                i += 2
                continue
            if section == "IF":
                if word == "SIMULATION":
                    attribute, op, value = tokens[i + 1].upper(), tokens[i + 2], tokens[i + 3]
                    if attribute not in ("TIME", "CLOCKTIME"):
                        raise fail(f"premise SIMULATION {attribute} is not supported")
                    premises.append(
                        Premise("SIMULATION", "", attribute, op, _time_value(value), joiner)
                    )
                    i += 4
                    continue
                kind, obj, attribute, op, value = (tokens[i + k] for k in range(5))
                kind, attribute = kind.upper(), attribute.upper()
                if op not in _OPS:
                    raise fail(f"unknown comparison {op!r}")
                if kind == "NODE":
                    if obj not in net.nodes:
                        raise fail(f"no node {obj!r}")
                    if attribute not in ("DEPTH", "HEAD", "INFLOW"):
                        raise fail(f"premise NODE {attribute} is not supported")
                    scale = units.flow if attribute == "INFLOW" else units.length
                    number = float(value) * scale
                elif kind in ("LINK", "CONDUIT", "PUMP", "ORIFICE", "WEIR"):
                    if obj not in net.links:
                        raise fail(f"no link {obj!r}")
                    if attribute == "FLOW":
                        number = float(value) * units.flow
                    elif attribute == "STATUS":
                        number = 1.0 if value.upper() in ("ON", "OPEN") else 0.0
                    else:
                        raise fail(f"premise {kind} {attribute} is not supported")
                else:
                    raise fail(f"premise on {kind} is not supported")
                premises.append(Premise(kind, obj, attribute, op, number, joiner))
                i += 5
                continue
            if section in ("THEN", "ELSE"):
                kind, obj, attribute, _eq, value = (tokens[i + k] for k in range(5))
                kind, attribute = kind.upper(), attribute.upper()
                if obj not in net.links:
                    raise fail(f"no link {obj!r}")
                if attribute == "STATUS":
                    number = 1.0 if value.upper() in ("ON", "OPEN") else 0.0
                elif attribute == "SETTING":
                    try:
                        number = float(value)
                    except ValueError:
                        raise fail(f"SETTING must be a number, got {value!r}") from None
                else:
                    raise fail(f"action {attribute} is not supported")
                (then if section == "THEN" else otherwise).append(
                    Action(kind, obj, attribute, number)
                )
                i += 5
                continue
            raise fail(f"unexpected {tokens[i]!r}")
        rules.append(Rule(name, tuple(premises), tuple(then), tuple(otherwise), priority))
    return sorted(rules, key=lambda r: r.priority)
