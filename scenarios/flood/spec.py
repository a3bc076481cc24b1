"""What a flood drill runs (:class:`FloodSpec`) and what it returns (:class:`FloodResult`).

Both are plain dataclasses with ``from_dict`` / ``to_dict`` (JSON-safe), so the API's job
wrapper and the CLI build and print them without knowing the model.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any


@dataclass(frozen=True)
class PumpFailure:
    """Pump ``name`` stops at ``t_s`` (seconds from the start) and stays off."""

    name: str
    t_s: float


@dataclass(frozen=True)
class LinkSetting:
    """An operator's scheduled action: at ``t_s`` set link ``name`` to ``value``.

    Pumps: 0 off, > 0 on. Orifices and weirs: opening 0..1. Conduits: 0 closed, 1 open.
    """

    name: str
    t_s: float
    value: float


@dataclass(frozen=True)
class DesignStorm:
    """A Chicago design storm replacing the file's rain on every gauge.

    ``formula`` names an entry of :data:`scenarios.flood.rain.INTENSITY_FORMULAS`.
    """

    formula: str
    return_period_a: float
    duration_min: float
    peak_ratio: float | None = None
    step_min: float = 5.0


@dataclass(frozen=True)
class FloodSpec:
    """One 1D drainage run.

    Attributes
    ----------
    inp : path of the SWMM ``.inp`` file
    duration_s : simulated time; None: the file's START..END
    pump_failures : pumps that stop at a given time
    settings : scheduled operator actions on pumps, gates (orifices, weirs) and conduits
    storm : a design storm in place of the file's rain (None: the file's gauges)
    report_step_s : sampling of the recorded series; None: the file's REPORT_STEP
    gauge_rain_mm_h : rain per gauge in place of the file's: ``{gauge: ((t_s, mm/h), ...)}``,
        each intensity held until the next time (the live gauges of the twin, for instance)
    """

    inp: str
    duration_s: float | None = None
    pump_failures: tuple[PumpFailure, ...] = ()
    settings: tuple[LinkSetting, ...] = ()
    storm: DesignStorm | None = None
    report_step_s: float | None = None
    gauge_rain_mm_h: dict[str, tuple[tuple[float, float], ...]] | None = None

    def __post_init__(self) -> None:
        if self.duration_s is not None and not self.duration_s > 0:
            raise ValueError(f"duration_s(={self.duration_s}) must be > 0")
        if self.storm is not None and self.gauge_rain_mm_h is not None:
            raise ValueError("give a design storm or gauge rain, not both")
        for gauge, rows in (self.gauge_rain_mm_h or {}).items():
            times = [t for t, _ in rows]
            if not rows or times != sorted(set(times)) or times[0] < 0:
                raise ValueError(f"gauge {gauge!r}: rain times must start >= 0 and increase")
            if not all(math.isfinite(v) and v >= 0 for _, v in rows):
                raise ValueError(f"gauge {gauge!r}: rain intensities must be finite and >= 0")
        for failure in self.pump_failures:
            if not failure.t_s >= 0:
                raise ValueError(f"pump failure time(={failure.t_s}) must be >= 0")
        for setting in self.settings:
            if not setting.t_s >= 0 or not setting.value >= 0:
                raise ValueError(f"setting {setting}: time and value must be >= 0")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FloodSpec:
        """Build from a JSON-like dict.

        Raises
        ------
        ValueError
            If a key is unknown or a value is out of range.
        """
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown FloodSpec keys: {', '.join(sorted(unknown))}")
        storm = data.get("storm")
        return cls(
            inp=str(data["inp"]),
            duration_s=None if data.get("duration_s") is None else float(data["duration_s"]),
            pump_failures=tuple(
                PumpFailure(str(f["name"]), float(f["t_s"])) for f in data.get("pump_failures", ())
            ),
            settings=tuple(
                LinkSetting(str(f["name"]), float(f["t_s"]), float(f["value"]))
                for f in data.get("settings", ())
            ),
            storm=DesignStorm(**storm) if storm else None,
            report_step_s=None
            if data.get("report_step_s") is None
            else float(data["report_step_s"]),
            gauge_rain_mm_h=None
            if data.get("gauge_rain_mm_h") is None
            else {
                str(g): tuple((float(t), float(v)) for t, v in rows)
                for g, rows in data["gauge_rain_mm_h"].items()
            },
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict."""
        return asdict(self)


@dataclass
class FloodResult:
    """Summary of one run, SI units, keyed by the file's ids.

    ``continuity_error_pct`` is (inflow + initial storage − outflow − flooding − final
    storage) / inflow · 100, as SWMM reports it.
    """

    total_flood_volume_m3: float
    outfall_peak_flow_m3s: dict[str, float]
    outfall_volume_m3: dict[str, float]
    node_flood_volume_m3: dict[str, float]
    node_max_depth_m: dict[str, float]
    node_surcharge_s: dict[str, float]
    link_peak_flow_m3s: dict[str, float]
    flooded_nodes: list[str]
    continuity_error_pct: float
    runoff_volume_m3: float
    inflow_volume_m3: float
    outflow_volume_m3: float
    steps: int
    duration_s: float
    wall_s: float
    ignored_sections: list[str] = field(default_factory=list)
    report_times_s: list[float] = field(default_factory=list)
    node_depth_series_m: dict[str, list[float]] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self, series: bool = False) -> dict[str, Any]:
        """JSON-safe dict; the recorded series only when ``series``."""
        out = asdict(self)
        if not series:
            out.pop("node_depth_series_m")
            out.pop("report_times_s")
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FloodResult:
        """Inverse of :meth:`to_dict`."""
        return cls(**data)
