"""What a traffic drill runs on: the road network, demand, closures, signal plans, settings.

All quantities are SI: metres, seconds, vehicles; speeds in m/s, flows in veh/s, jam density
in veh/m. Every dataclass round-trips through JSON with ``to_dict`` / ``from_dict``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

#: UXsim's defaults, kept so that the same CSV runs alike in both.
DEFAULT_JAM_DENSITY_VPM = 0.2
DEFAULT_REACTION_TIME_S = 1.0


@dataclass
class RoadNetwork:
    """A directed road network as parallel arrays, one row per node or link.

    Attributes
    ----------
    node_names : (n,) str
    x, y : (n,) float, coordinates as given (degrees or metres; only drawn, never measured)
    link_names : (m,) str, unique
    link_codes : (m,) str, CIM road object codes (the link name when none is known)
    start, end : (m,) int, node indices
    length_m : (m,) float, metres
    speed_mps : (m,) float, free-flow speed, m/s
    lanes : (m,) int
    jam_density_vpm : (m,) float, jam density of the whole link (all lanes), veh/m
    merge_priority : (m,) float, share of a merge this link wins, relative to the others
    capacity_out_vps, capacity_in_vps : (m,) float, veh/s, ``nan`` when not set
    road_class : (m,) str, ``""`` when unknown (GB/T 33171 grade bands need it)
    """

    node_names: list[str]
    x: FloatArray
    y: FloatArray
    link_names: list[str]
    link_codes: list[str]
    start: IntArray
    end: IntArray
    length_m: FloatArray
    speed_mps: FloatArray
    lanes: IntArray
    jam_density_vpm: FloatArray
    merge_priority: FloatArray
    capacity_out_vps: FloatArray
    capacity_in_vps: FloatArray
    road_class: list[str]

    @property
    def n_nodes(self) -> int:
        return len(self.node_names)

    @property
    def n_links(self) -> int:
        return len(self.link_names)

    def link_index(self, key: str) -> int:
        """Index of the link named ``key`` or carrying road code ``key``.

        Raises
        ------
        KeyError
            No link has that name or code.
        """
        lookup = getattr(self, "_lookup", None)
        if lookup is None:
            lookup = {name: i for i, name in enumerate(self.link_names)}
            for i, code in enumerate(self.link_codes):
                lookup.setdefault(code, i)
            self._lookup = lookup
        try:
            return int(lookup[key])
        except KeyError:
            raise KeyError(key) from None

    def graph(self) -> Any:
        """The topology as a ``networkx.MultiDiGraph`` keyed by node and link names.

        Edges carry ``name``, ``code``, ``length_m``, ``speed_mps``, ``lanes`` and ``index``.
        """
        import networkx as nx

        graph = nx.MultiDiGraph()
        for i, name in enumerate(self.node_names):
            graph.add_node(name, x=float(self.x[i]), y=float(self.y[i]), index=i)
        for i, name in enumerate(self.link_names):
            graph.add_edge(
                self.node_names[int(self.start[i])],
                self.node_names[int(self.end[i])],
                key=name,
                name=name,
                code=self.link_codes[i],
                length_m=float(self.length_m[i]),
                speed_mps=float(self.speed_mps[i]),
                lanes=int(self.lanes[i]),
                index=i,
            )
        return graph

    def to_dict(self) -> dict[str, Any]:
        return {
            "nodes": [
                {"name": n, "x": float(x), "y": float(y)}
                for n, x, y in zip(self.node_names, self.x, self.y, strict=True)
            ],
            "links": [
                {
                    "name": self.link_names[i],
                    "code": self.link_codes[i],
                    "start_node": self.node_names[int(self.start[i])],
                    "end_node": self.node_names[int(self.end[i])],
                    "length": float(self.length_m[i]),
                    "free_flow_speed": float(self.speed_mps[i]),
                    "number_of_lanes": int(self.lanes[i]),
                    "jam_density": float(self.jam_density_vpm[i]),
                    "merge_priority": float(self.merge_priority[i]),
                    "capacity_out": _nan_none(self.capacity_out_vps[i]),
                    "capacity_in": _nan_none(self.capacity_in_vps[i]),
                    "road_class": self.road_class[i],
                }
                for i in range(self.n_links)
            ],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RoadNetwork:
        from scenarios.traffic.loaders import network_from_rows

        return network_from_rows("<dict>", data["nodes"], data["links"])


def _nan_none(value: float) -> float | None:
    return None if math.isnan(value) else float(value)


@dataclass(frozen=True)
class DemandWindow:
    """OD demand: ``flow_vps`` vehicles per second from ``t_start_s`` to ``t_end_s``.

    ``volume`` (vehicles over the window), when > 0, replaces ``flow_vps``.
    """

    orig: str
    dest: str
    t_start_s: float
    t_end_s: float
    flow_vps: float = -1.0
    volume: float = -1.0

    def rate_vps(self) -> float:
        if self.volume > 0:
            return self.volume / (self.t_end_s - self.t_start_s)
        return max(self.flow_vps, 0.0)


@dataclass(frozen=True)
class Closure:
    """A link (or some of its lanes) closed from ``t_start_s`` for ``duration_s``.

    ``link`` is a link name or road object code; ``duration_s`` ``None`` closes it to the end;
    ``lanes`` ``None`` closes every lane. This is the shape the flood model emits.
    """

    link: str
    t_start_s: float
    duration_s: float | None = None
    lanes: int | None = None
    reason: str = ""

    def __post_init__(self) -> None:
        if not (math.isfinite(self.t_start_s) and self.t_start_s >= 0):
            raise ValueError(f"closure of {self.link!r}: t_start_s(={self.t_start_s}) must be >= 0")
        if self.duration_s is not None and not (
            math.isfinite(self.duration_s) and self.duration_s > 0
        ):
            raise ValueError(
                f"closure of {self.link!r}: duration_s(={self.duration_s}) must be > 0"
            )
        if self.lanes is not None and self.lanes < 1:
            raise ValueError(f"closure of {self.link!r}: lanes(={self.lanes}) must be >= 1")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Closure:
        duration = data.get("duration_s")
        lanes = data.get("lanes")
        return cls(
            link=str(data["link"]),
            t_start_s=float(data["t_start_s"]),
            duration_s=None if duration is None else float(duration),
            lanes=None if lanes is None else int(lanes),
            reason=str(data.get("reason", "")),
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Metering:
    """An operator measure: a link's outflow held to ``rate_vps`` vehicles/s from
    ``t_start_s`` for ``duration_s`` (``None``: to the end) — ramp metering, a police
    control point, a gated car-park exit.
    """

    link: str
    t_start_s: float
    rate_vps: float
    duration_s: float | None = None
    reason: str = ""

    def __post_init__(self) -> None:
        if not (math.isfinite(self.t_start_s) and self.t_start_s >= 0):
            raise ValueError(
                f"metering of {self.link!r}: t_start_s(={self.t_start_s}) must be >= 0"
            )
        if not (math.isfinite(self.rate_vps) and self.rate_vps > 0):
            raise ValueError(f"metering of {self.link!r}: rate_vps(={self.rate_vps}) must be > 0")
        if self.duration_s is not None and not (
            math.isfinite(self.duration_s) and self.duration_s > 0
        ):
            raise ValueError(
                f"metering of {self.link!r}: duration_s(={self.duration_s}) must be > 0"
            )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Metering:
        duration = data.get("duration_s")
        return cls(
            link=str(data["link"]),
            t_start_s=float(data["t_start_s"]),
            rate_vps=float(data["rate_vps"]),
            duration_s=None if duration is None else float(duration),
            reason=str(data.get("reason", "")),
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class SignalPlan:
    """A fixed-time signal at a node: phase durations, and which links are green in which phase.

    ``green`` maps an incoming link name (or code) to the phase indices it is green in;
    incoming links not listed are never stopped.
    """

    node: str
    phases_s: tuple[float, ...]
    green: dict[str, tuple[int, ...]]
    offset_s: float = 0.0

    def __post_init__(self) -> None:
        if not self.phases_s or any(not (p > 0) for p in self.phases_s):
            raise ValueError(f"signal at {self.node!r}: phases_s must be durations > 0")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SignalPlan:
        return cls(
            node=str(data["node"]),
            phases_s=tuple(float(p) for p in data["phases_s"]),
            green={str(k): tuple(int(p) for p in v) for k, v in data["green"].items()},
            offset_s=float(data.get("offset_s", 0.0)),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "node": self.node,
            "phases_s": list(self.phases_s),
            "green": {k: list(v) for k, v in self.green.items()},
            "offset_s": self.offset_s,
        }


@dataclass
class TrafficSpec:
    """One traffic drill.

    Attributes
    ----------
    network : the roads
    demand : OD windows
    closures : links or lanes closed over time (incidents, floods, events)
    signals : fixed-time signal plans
    meterings : operator measures holding links' outflow to a rate
    tmax_s : simulated duration; ``None``: UXsim's rule, last departure rounded down to
        half an hour plus one hour
    deltan : platoon size, vehicles per row (the time step is ``deltan * reaction_time_s``)
    reaction_time_s : drivers' reaction time, s
    reroute_interval_s : how often routes are recomputed on current travel times, s
    route_weight : weight of the newest shortest-path tree in the route preferences
    route_noise : relative noise on link travel times when routing (breaks ties)
    reroute_on_closure : also recompute routes the moment a closure starts or ends
    record_interval_s : spacing of the per-link time series, s
    seed : seed of the run's one random generator
    """

    network: RoadNetwork
    demand: list[DemandWindow]
    closures: list[Closure] = field(default_factory=list)
    signals: list[SignalPlan] = field(default_factory=list)
    meterings: list[Metering] = field(default_factory=list)
    tmax_s: float | None = None
    deltan: int = 5
    reaction_time_s: float = DEFAULT_REACTION_TIME_S
    reroute_interval_s: float = 600.0
    route_weight: float = 0.5
    route_noise: float = 0.01
    reroute_on_closure: bool = True
    record_interval_s: float = 300.0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.deltan < 1:
            raise ValueError(f"deltan(={self.deltan}) must be >= 1")
        for name in ("reaction_time_s", "reroute_interval_s", "record_interval_s"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name}(={value}) must be > 0")
        if self.tmax_s is not None and not (math.isfinite(self.tmax_s) and self.tmax_s > 0):
            raise ValueError(f"tmax_s(={self.tmax_s}) must be > 0")
        if not 0 < self.route_weight <= 1:
            raise ValueError(f"route_weight(={self.route_weight}) must be in (0, 1]")

    @property
    def dt_s(self) -> float:
        return self.deltan * self.reaction_time_s

    def resolved_tmax_s(self) -> float:
        """``tmax_s``, or UXsim's default from the last departure."""
        if self.tmax_s is not None:
            return self.tmax_s
        last = max((w.t_end_s for w in self.demand), default=0.0)
        return (last // 1800 + 2) * 1800

    def to_dict(self) -> dict[str, Any]:
        return {
            "network": self.network.to_dict(),
            "demand": [asdict(w) for w in self.demand],
            "closures": [c.to_dict() for c in self.closures],
            "signals": [s.to_dict() for s in self.signals],
            "meterings": [m.to_dict() for m in self.meterings],
            "tmax_s": self.tmax_s,
            "deltan": self.deltan,
            "reaction_time_s": self.reaction_time_s,
            "reroute_interval_s": self.reroute_interval_s,
            "route_weight": self.route_weight,
            "route_noise": self.route_noise,
            "reroute_on_closure": self.reroute_on_closure,
            "record_interval_s": self.record_interval_s,
            "seed": self.seed,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrafficSpec:
        settings = {
            k: data[k]
            for k in (
                "tmax_s",
                "deltan",
                "reaction_time_s",
                "reroute_interval_s",
                "route_weight",
                "route_noise",
                "reroute_on_closure",
                "record_interval_s",
                "seed",
            )
            if k in data
        }
        return cls(
            network=RoadNetwork.from_dict(data["network"]),
            demand=[DemandWindow(**w) for w in data["demand"]],
            closures=[Closure.from_dict(c) for c in data.get("closures", [])],
            signals=[SignalPlan.from_dict(s) for s in data.get("signals", [])],
            meterings=[Metering.from_dict(m) for m in data.get("meterings", [])],
            **settings,
        )
