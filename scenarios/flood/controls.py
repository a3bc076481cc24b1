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
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from cim.errors import SourceError
from cim.loaders.swmm_units import unit_system
from scenarios.flood.network import Network

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


# --- compiled form ---------------------------------------------------------------------------
# premise subjects
P_TIME, P_CLOCK, P_DEPTH, P_HEAD, P_INFLOW, P_STATUS, P_FLOW = 0, 1, 2, 3, 4, 5, 6
# link kinds of premises and actions
L_CONDUIT, L_PUMP, L_REG = 0, 1, 2
OP_CODES = {"=": 0, "<>": 1, "<": 2, "<=": 3, ">": 4, ">=": 5}


class JitRules(NamedTuple):
    """Rules as flat arrays for the compiled routing.

    Rule ``r``'s premises are rows ``r_premise[r]:r_premise[r + 1]``; its THEN actions rows
    ``r_action[2r]:r_action[2r + 1]`` and its ELSE actions ``r_action[2r + 1]:r_action[2r + 2]``.
    """

    p_subject: npt.NDArray[np.int64]
    p_link_kind: npt.NDArray[np.int64]
    p_index: npt.NDArray[np.int64]
    p_op: npt.NDArray[np.int64]
    p_value: npt.NDArray[np.float64]
    p_or: npt.NDArray[np.bool_]
    r_premise: npt.NDArray[np.int64]
    r_action: npt.NDArray[np.int64]
    a_kind: npt.NDArray[np.int64]
    a_index: npt.NDArray[np.int64]
    a_value: npt.NDArray[np.float64]


def pack_rules(
    rules: list[Rule], nodes: dict[str, int], links: dict[str, tuple[str, int]]
) -> JitRules:
    """``rules`` (in the order they are applied) as :class:`JitRules`.

    ``nodes`` maps node names to rows, ``links`` link names to ("conduit"|"pump"|"reg", row).
    """
    kinds = {"conduit": L_CONDUIT, "pump": L_PUMP, "reg": L_REG}
    subject = {"DEPTH": P_DEPTH, "HEAD": P_HEAD, "INFLOW": P_INFLOW}
    ps: list[tuple[int, int, int, int, float, bool]] = []
    acts: list[tuple[int, int, float]] = []
    r_premise, r_action = [0], [0]
    for rule in rules:
        for p in rule.premises:
            op, joined_or = OP_CODES[p.op], p.joiner == "OR"
            if p.kind == "SIMULATION":
                code = P_TIME if p.attribute == "TIME" else P_CLOCK
                ps.append((code, 0, 0, op, p.value, joined_or))
            elif p.kind == "NODE":
                ps.append((subject[p.attribute], 0, nodes[p.name], op, p.value, joined_or))
            else:
                kind, k = links[p.name]
                code = P_STATUS if p.attribute == "STATUS" else P_FLOW
                ps.append((code, kinds[kind], k, op, p.value, joined_or))
        r_premise.append(len(ps))
        for actions in (rule.then, rule.otherwise):
            for action in actions:
                kind, k = links[action.name]
                acts.append((kinds[kind], k, action.value))
            r_action.append(len(acts))
    i64 = np.int64
    return JitRules(
        p_subject=np.array([p[0] for p in ps], dtype=i64),
        p_link_kind=np.array([p[1] for p in ps], dtype=i64),
        p_index=np.array([p[2] for p in ps], dtype=i64),
        p_op=np.array([p[3] for p in ps], dtype=i64),
        p_value=np.array([p[4] for p in ps], dtype=np.float64),
        p_or=np.array([p[5] for p in ps], dtype=np.bool_),
        r_premise=np.array(r_premise, dtype=i64),
        r_action=np.array(r_action, dtype=i64),
        a_kind=np.array([a[0] for a in acts], dtype=i64),
        a_index=np.array([a[1] for a in acts], dtype=i64),
        a_value=np.array([a[2] for a in acts], dtype=np.float64),
    )
