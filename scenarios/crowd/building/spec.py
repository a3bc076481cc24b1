"""Parameters, measures and the request of a building evacuation drill."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from scenarios.crowd.spec import FundamentalDiagram

#: SFPE stair table: (riser m, tread m, speed constant k m/s, max specific flow P/(s·m)).
SFPE_STAIRS = (
    (0.191, 0.254, 1.00, 0.94),  # 7.5 in / 10 in
    (0.178, 0.279, 1.08, 1.01),  # 7 in / 11 in
    (0.165, 0.305, 1.16, 1.09),  # 6.5 in / 12 in
    (0.165, 0.330, 1.23, 1.16),  # 6.5 in / 13 in
)


@dataclass(frozen=True)
class BuildingFlow:
    """Speeds and capacities of the zone model (all data, all with sources).

    Attributes
    ----------
    fd : Weidmann speed–density relation on floors (the crowd drill's parameters)
    door_flow_pmps : maximum specific flow of doors and openings, persons/(s·m effective width)
    door_boundary_m, opening_boundary_m, stair_boundary_m : boundary layer per side, m:
        effective width = clear width − 2 × boundary layer
    stair_a : SFPE slope of speed on density, m²/person (``S = k (1 − a D)``)
    stair_free_density_pm2 : below this density the stair speed is at its maximum
    creep_mps : speed floor, so that a jammed zone still drains
    min_effective_m : smallest effective width (one file of people), m
    source : where the numbers come from
    """

    fd: FundamentalDiagram = field(default_factory=FundamentalDiagram)
    door_flow_pmps: float = 1.3
    door_boundary_m: float = 0.15
    opening_boundary_m: float = 0.20
    stair_boundary_m: float = 0.15
    stair_a: float = 0.266
    stair_free_density_pm2: float = 0.54
    creep_mps: float = 0.05
    min_effective_m: float = 0.3
    source: str = (
        "floors: Weidmann (1993) via the crowd drill (v0 1.34 m/s, gamma 1.913, rho_max 5.4); "
        "doors, openings and stairs: Gwynne & Rosenbaum, 'Employing the hydraulic model in "
        "assessing emergency movement', SFPE Handbook of Fire Protection Engineering (5th ed. "
        "2016, ch. 59; after Fruin and Pauls): doorways Fsm 1.3 P/(s·m effective width), "
        "boundary layers 15 cm (doors, stairs) and 20 cm (corridor walls), stair speed along "
        "the line of travel S = k(1 - 0.266 D) for D >= 0.54 P/m², k 1.00-1.23 and Fsm "
        "0.94-1.16 P/(s·m) by riser/tread (7.5/10 .. 6.5/13 in)"
    )

    def __post_init__(self) -> None:
        for name in ("door_flow_pmps", "stair_a", "creep_mps", "min_effective_m"):
            value = getattr(self, name)
            if not (value > 0 and math.isfinite(value)):
                raise ValueError(f"{name}(={value}) must be a finite number > 0")

    def stair_row(self, riser_m: float, tread_m: float) -> tuple[float, float]:
        """``(k m/s, Fsm P/(s·m))`` of the SFPE stair row nearest a riser and tread."""
        row = min(SFPE_STAIRS, key=lambda r: (r[0] - riser_m) ** 2 + (r[1] - tread_m) ** 2)
        return row[2], row[3]


@dataclass(frozen=True)
class Closure:
    """Close a door or stair (by CIM code) at ``at_s``: nobody enters it from then on."""

    code: str
    at_s: float = 0.0


@dataclass(frozen=True)
class StoreyRelease:
    """Staged evacuation: the occupants of one storey start moving at ``at_s``."""

    storey: str
    at_s: float


@dataclass(frozen=True)
class EvacuationSpec:
    """One drill: the building, its occupants and the measures.

    Occupants: ``loads`` (persons per space code: a given census or live counts), else
    ``per_space`` persons in every reachable space, else ``load_pm2`` persons per m² of floor.
    """

    site: str
    building: str
    load_pm2: float | None = None
    per_space: int | None = None
    loads: dict[str, int] = field(default_factory=dict)
    closures: tuple[Closure, ...] = ()
    stages: tuple[StoreyRelease, ...] = ()
    dt_s: float = 0.2
    max_time_s: float = 3600.0
    seed: int = 0
    flow: BuildingFlow = field(default_factory=BuildingFlow)

    def __post_init__(self) -> None:
        given = [self.load_pm2 is not None, self.per_space is not None, bool(self.loads)]
        if sum(given) > 1:
            raise ValueError("give one of load_pm2, per_space and loads")
        if self.load_pm2 is not None and not (
            0 <= self.load_pm2 <= 5 and math.isfinite(self.load_pm2)
        ):
            raise ValueError(f"load_pm2(={self.load_pm2}) must be in 0..5 persons/m²")
        if self.per_space is not None and not 0 <= self.per_space <= 10_000:
            raise ValueError(f"per_space(={self.per_space}) must be in 0..10000")
        for code, n in self.loads.items():
            if not (isinstance(n, int) and n >= 0):
                raise ValueError(f"loads[{code!r}](={n!r}) must be a whole number >= 0")
        if not 0.01 <= self.dt_s <= 1.0:
            raise ValueError(f"dt_s(={self.dt_s}) must be in 0.01..1 s")
        if not 0 < self.max_time_s <= 86_400:
            raise ValueError(f"max_time_s(={self.max_time_s}) must be in (0, 86400]")
        for at_s in [c.at_s for c in self.closures] + [r.at_s for r in self.stages]:
            if not (at_s >= 0 and math.isfinite(at_s)):
                raise ValueError(f"at_s(={at_s}) of a measure must be a finite number >= 0")

    @classmethod
    def from_dict(cls, body: dict[str, Any]) -> EvacuationSpec:
        """From JSON: ``{"site", "building", "load_pm2" | "per_space" | "loads", "measures":
        [{"close": CODE, "at_s"} | {"stage": STOREY, "at_s"}], "dt_s", "max_time_s", "seed"}``.

        Raises
        ------
        ValueError, KeyError, TypeError
            On a malformed body.
        """
        allowed = {
            "site",
            "building",
            "load_pm2",
            "per_space",
            "loads",
            "measures",
            "dt_s",
            "max_time_s",
            "seed",
        }
        extra = sorted(set(body) - allowed)
        if extra:
            raise ValueError(f"unknown fields {', '.join(extra)}; allowed: {sorted(allowed)}")
        closures, stages = [], []
        measures = body.get("measures", [])
        if not isinstance(measures, list):
            raise ValueError("measures must be a list")
        for i, m in enumerate(measures):
            if not isinstance(m, dict) or set(m) - {"close", "stage", "at_s"}:
                raise ValueError(f"measures[{i}] must be {{close: CODE | stage: STOREY, at_s}}")
            at = float(m.get("at_s", 0.0))
            if isinstance(m.get("close"), str):
                closures.append(Closure(m["close"], at))
            elif isinstance(m.get("stage"), str):
                stages.append(StoreyRelease(m["stage"], at))
            else:
                raise ValueError(f"measures[{i}] needs close or stage naming a CIM code")
        for name in ("site", "building"):
            if not isinstance(body.get(name), str):
                raise ValueError(f"{name} must be a string")
        loads = body.get("loads", {})
        if not isinstance(loads, dict):
            raise ValueError("loads must map space codes to persons")
        return cls(
            site=body["site"],
            building=body["building"],
            load_pm2=None if body.get("load_pm2") is None else float(body["load_pm2"]),
            per_space=None if body.get("per_space") is None else int(body["per_space"]),
            loads=dict(loads),
            closures=tuple(closures),
            stages=tuple(stages),
            dt_s=float(body.get("dt_s", 0.2)),
            max_time_s=float(body.get("max_time_s", 3600.0)),
            seed=int(body.get("seed", 0)),
        )
