"""What a crowd drill is asked (:class:`CrowdSpec`) and what it answers (:class:`CrowdResult`).

Both are JSON-safe through ``to_dict`` / ``from_dict``. Parameters of the fundamental diagram
are data with their source (:class:`FundamentalDiagram`), not constants in the code.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

import numpy as np
import shapely
from numpy.typing import NDArray


@dataclass(frozen=True)
class FundamentalDiagram:
    """Speed–density relation and capacities.

    Attributes
    ----------
    free_speed_mps, free_speed_sd_mps : mean and spread of free walking speeds, m/s
    gamma_pm2 : Weidmann's shape parameter γ, 1/m²
    rho_max_pm2 : jam density, persons/m² (empirical 3.8–10: a parameter, not a constant)
    specific_flow_pmps : capacity per metre of width of doors, exits and cell faces,
        persons/(m·s)
    single_file_m : width of one file of people: an exit narrower than this still passes
        one file, so its capacity is ``specific flow × max(width, single_file_m)``
    source : where the numbers come from
    """

    free_speed_mps: float = 1.34
    free_speed_sd_mps: float = 0.26
    gamma_pm2: float = 1.913
    rho_max_pm2: float = 5.4
    specific_flow_pmps: float = 1.9
    single_file_m: float = 0.6
    source: str = (
        "Weidmann (1993) Transporttechnik der Fussgaenger, ETH IVT Schriftenreihe 90: "
        "v0 1.34 ± 0.26 m/s, gamma 1.913 /m², rho_max 5.4 /m²; bottleneck capacity "
        "1.9 /(m·s): Seyfried et al. (2009) New insights into pedestrian flow through "
        "bottlenecks, Transportation Science 43(3), flow growing linearly with width; "
        "one file 0.6 m: the width module of German assembly-venue rules (MVStaettVO), and "
        "Kretz et al. (2006) J. Stat. Mech. P10014: flow about constant while one person "
        "at a time passes"
    )

    def __post_init__(self) -> None:
        for name in ("free_speed_mps", "gamma_pm2", "rho_max_pm2", "specific_flow_pmps"):
            value = getattr(self, name)
            if not (value > 0 and np.isfinite(value)):
                raise ValueError(f"{name}(={value}) must be a finite number > 0")
        if not (0 <= self.free_speed_sd_mps < self.free_speed_mps):
            raise ValueError(f"free_speed_sd_mps(={self.free_speed_sd_mps}) must be in [0, v0)")


@dataclass(frozen=True)
class ExitMeasure:
    """Close, meter or reopen exit ``exit`` at ``at_s``.

    ``rate_pps`` 0 closes the exit (walkers re-route to the nearest open one), a positive
    rate meters it (persons/s), ``None`` restores its geometric capacity.
    """

    exit: int
    at_s: float = 0.0
    rate_pps: float | None = 0.0


@dataclass(frozen=True)
class OneWay:
    """From ``at_s`` people inside ``polygon`` may only walk with a positive component along
    ``bearing_deg`` (degrees clockwise from the venue's +y axis, north: 0 north, 90 east).

    ``polygon`` is its exterior ring in the venue's coordinates, metres. Routes are
    recomputed when it comes on; a person who then has no way to an exit is counted as
    trapped.
    """

    polygon: tuple[tuple[float, float], ...]
    bearing_deg: float
    at_s: float = 0.0

    def __post_init__(self) -> None:
        ring = self.polygon
        try:
            points = [(float(x), float(y)) for x, y in ring]
        except (TypeError, ValueError):
            raise ValueError(
                f"one_way polygon must be a list of [x, y] pairs, got {ring!r}"
            ) from None
        object.__setattr__(self, "polygon", tuple(points))
        if len(set(points)) < 3 or not np.isfinite(points).all():
            raise ValueError(f"one_way polygon needs 3 or more distinct finite points: {ring!r}")
        if not shapely.Polygon(points).is_valid or not shapely.Polygon(points).area > 0:
            reason = shapely.is_valid_reason(shapely.Polygon(points))
            raise ValueError(f"one_way polygon is not a valid area ({reason}): {ring!r}")
        bearing = self.bearing_deg
        if isinstance(bearing, bool) or not isinstance(bearing, int | float):
            raise ValueError(f"one_way bearing_deg(={bearing!r}) must be a number of degrees")
        if not (np.isfinite(bearing) and -360.0 <= bearing <= 360.0):
            raise ValueError(f"one_way bearing_deg(={bearing}) must be in -360..360 degrees")
        if not (np.isfinite(self.at_s) and self.at_s >= 0):
            raise ValueError(f"one_way at_s(={self.at_s}) must be a finite number >= 0")

    @property
    def area(self) -> shapely.Geometry:
        """The polygon as a shapely geometry."""
        return shapely.Polygon(self.polygon)

    @property
    def direction(self) -> tuple[float, float]:
        """Unit vector of the allowed direction (x east, y north)."""
        angle = np.radians(self.bearing_deg)
        return float(np.sin(angle)), float(np.cos(angle))


@dataclass(frozen=True)
class Release:
    """Walkers start moving at ``at_s``: those in spawn area ``spawn``, or all when ``None``.

    One release for all is an evacuation order after a pre-movement time; several are a
    staged release.
    """

    at_s: float
    spawn: int | None = None


@dataclass(frozen=True)
class Arrival:
    """``people`` enter spawn area ``spawn`` at a steady random rate between two times."""

    spawn: int
    people: int
    start_s: float = 0.0
    end_s: float = 60.0


@dataclass(frozen=True)
class CrowdSpec:
    """A crowd drill.

    Attributes
    ----------
    venue : path of a ``.wkt`` or ``.geojson`` venue
    agents : people placed at the start, uniformly over the walkable area (or the spawn
        areas with ``placement="spawn"``, or at ``positions``)
    seed : seed of the run's only random generator
    cell_m : raster cell edge (default: about 50,000 cells, 0.4–1 m)
    dt_s : time step (default: half a cell at the fastest walker's speed)
    window_m : side of the density window, metres
    zone_m : side of the square reporting zones when the venue names none
    record_every_s : sampling interval of densities and the evacuation curve
    max_time_s : stop here even if people remain
    placement : ``"uniform"`` or ``"spawn"``
    positions : explicit start positions ((x, y) metres), overriding ``agents``' placement
    measures, releases, arrivals, one_ways : SimPy actors (see the classes); in the
        ``to_dict`` form a measure ``{"one_way": {"polygon", "bearing_deg", "at_s"}}`` is a
        one-way corridor
    reroute_every_s : congestion-aware re-routing interval (None: nearest exit throughout)
    alert_levels_pm2 : densities that raise an alert when a zone crosses them
    fd : the fundamental diagram
    density_png : write a PNG map of the peak density here
    grid_cache : directory keeping discretised venues (``.npz``), so that trying measures
        on the same venue does not rebuild its cells and distances
    """

    venue: str
    agents: int
    seed: int = 0
    cell_m: float | None = None
    dt_s: float | None = None
    window_m: float = 1.5
    zone_m: float = 10.0
    record_every_s: float = 1.0
    max_time_s: float = 7200.0
    placement: str = "uniform"
    positions: tuple[tuple[float, float], ...] | None = None
    measures: tuple[ExitMeasure, ...] = ()
    releases: tuple[Release, ...] = ()
    arrivals: tuple[Arrival, ...] = ()
    one_ways: tuple[OneWay, ...] = ()
    reroute_every_s: float | None = None
    alert_levels_pm2: tuple[float, ...] = (2.0, 4.0, 5.0, 6.0)
    fd: FundamentalDiagram = field(default_factory=FundamentalDiagram)
    density_png: str | None = None
    grid_cache: str | None = None

    def __post_init__(self) -> None:
        if self.agents < 0:
            raise ValueError(f"agents(={self.agents}) must be >= 0")
        for name in ("record_every_s", "max_time_s", "window_m", "zone_m"):
            value = getattr(self, name)
            if not (value > 0 and np.isfinite(value)):
                raise ValueError(f"{name}(={value}) must be a finite number > 0")
        for name in ("cell_m", "dt_s", "reroute_every_s"):
            value = getattr(self, name)
            if value is not None and not (value > 0 and np.isfinite(value)):
                raise ValueError(f"{name}(={value}) must be a finite number > 0")
        if self.placement not in ("uniform", "spawn"):
            raise ValueError(f"placement(={self.placement!r}) must be 'uniform' or 'spawn'")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CrowdSpec:
        """The spec from its ``to_dict`` form.

        Raises
        ------
        ValueError
            Unknown keys or bad values.
        """
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown crowd spec keys: {', '.join(sorted(unknown))}")
        values = dict(data)
        measures = list(data.get("measures", ()))
        for m in measures:
            if not isinstance(m, dict):
                raise ValueError(f"a measure must be an object, got {m!r}")
        one_ways = [m["one_way"] for m in measures if "one_way" in m]
        one_ways += list(data.get("one_ways", ()))
        for item in one_ways:
            if not isinstance(item, dict):
                raise ValueError(f"one_way must be an object, got {item!r}")
            for key in ("polygon", "bearing_deg"):
                if key not in item:
                    raise ValueError(f"one_way needs {key}: {item!r}")
            extra = set(item) - {"polygon", "bearing_deg", "at_s"}
            if extra:
                raise ValueError(f"unknown one_way keys: {', '.join(sorted(extra))}")
        for m in measures:
            if "one_way" in m and len(m) > 1:
                raise ValueError(f"a one_way measure has only the key one_way: {m!r}")
        values["measures"] = tuple(ExitMeasure(**m) for m in measures if "one_way" not in m)
        values["one_ways"] = tuple(OneWay(**item) for item in one_ways)
        values["releases"] = tuple(Release(**r) for r in data.get("releases", ()))
        values["arrivals"] = tuple(Arrival(**a) for a in data.get("arrivals", ()))
        values["alert_levels_pm2"] = tuple(data.get("alert_levels_pm2", (2.0, 4.0, 5.0, 6.0)))
        if data.get("positions") is not None:
            values["positions"] = tuple((float(x), float(y)) for x, y in data["positions"])
        if "fd" in data:
            values["fd"] = FundamentalDiagram(**data["fd"])
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form."""
        return asdict(self)


@dataclass
class CrowdResult:
    """What a crowd drill answers.

    Attributes
    ----------
    agents : people in the drill (placed plus arrived)
    evacuated : people who left through an exit
    evacuation_time_s : T100, when the last person left (None if some never did)
    t90_s : when 90 % had left (None if they never did)
    max_density_pm2 : highest window density seen anywhere
    exit_flows : people through each exit, by exit index
    wall_s : wall-clock seconds of the run
    cell_m, dt_s, cells, steps : the discretisation used
    curve_t_s, curve_evacuated : the evacuation curve (time, people out)
    exit_curves : people out through each exit at each sample time
    zones : per zone: name, area, peak density, Fruin level, seconds above each alert level
    zone_density_t : (samples, zones) peak window density per zone over time (not in JSON)
    alerts : threshold crossings ``{"zone", "t", "density", "level"}``
    exit_time_s : (agents,) time each person left, NaN if not (not in JSON)
    density_png : path of the PNG density map, if one was written
    trapped : people still inside at the end with no way left to an open exit (one-way
        corridors or closures cut them off); they are counted, never dropped
    """

    agents: int
    evacuated: int
    evacuation_time_s: float | None
    t90_s: float | None
    max_density_pm2: float
    exit_flows: dict[int, int]
    wall_s: float
    cell_m: float
    dt_s: float
    cells: int
    steps: int
    curve_t_s: list[float]
    curve_evacuated: list[int]
    exit_curves: dict[int, list[int]]
    zones: list[dict[str, Any]]
    alerts: list[dict[str, Any]]
    zone_density_t: NDArray[np.float64] = field(repr=False)
    exit_time_s: NDArray[np.float64] = field(repr=False)
    density_png: str | None = None
    trapped: int = 0

    def summary(self) -> dict[str, Any]:
        """The CLI contract: agents, T100, T90, peak density, exit flows, wall time; and
        ``trapped`` when anyone was left without a way out."""
        out: dict[str, Any] = {
            "agents": self.agents,
            "evacuation_time_s": self.evacuation_time_s,
            "t90_s": self.t90_s,
            "max_density_pm2": self.max_density_pm2,
            "exit_flows": dict(self.exit_flows),
            "wall_s": self.wall_s,
        }
        if self.trapped:
            out["trapped"] = self.trapped
        return out

    def zone_frames(self, every_s: float = 10.0) -> list[dict[str, Any]]:
        """Peak density per zone over time, for the viewer: one frame per ``every_s``.

        Each frame is ``{"t": seconds, "density": {zone: persons/m²}}`` with only the zones
        that hold anyone, so frames stay small.
        """
        if not every_s > 0:
            raise ValueError(f"every_s(={every_s}) must be > 0")
        times = np.asarray(self.curve_t_s)
        names = [z["zone"] for z in self.zones]
        frames = []
        next_t = 0.0
        for index in range(times.size):
            if times[index] + 1e-9 < next_t and index != times.size - 1:
                continue
            row = self.zone_density_t[index]
            busy = np.flatnonzero(row > 0)
            frames.append(
                {
                    "t": float(times[index]),
                    "density": {names[i]: round(float(row[i]), 3) for i in busy.tolist()},
                }
            )
            next_t = float(times[index]) + every_s
        return frames

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form (without the per-person and per-sample arrays)."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        del out["zone_density_t"], out["exit_time_s"]
        out["exit_flows"] = {str(k): v for k, v in self.exit_flows.items()}
        out["exit_curves"] = {str(k): v for k, v in self.exit_curves.items()}
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CrowdResult:
        """The result from its ``to_dict`` form (the arrays come back empty)."""
        values = dict(data)
        values["exit_flows"] = {int(k): int(v) for k, v in data["exit_flows"].items()}
        values["exit_curves"] = {int(k): list(v) for k, v in data["exit_curves"].items()}
        values["zone_density_t"] = np.zeros((0, len(data["zones"])))
        values["exit_time_s"] = np.zeros(0)
        return cls(**values)
