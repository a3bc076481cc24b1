"""What a traffic drill returns: trip statistics, per-link series, grades, stranded vehicles."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from scenarios.traffic.grades import GRADE_NAMES
from scenarios.traffic.spec import FloatArray, IntArray


@dataclass
class TripStats:
    """Trip statistics over all vehicles (platoons count ``deltan`` each).

    Travel time runs from the scheduled departure (waiting at the origin included) to arrival;
    delay is travel time less the free-flow shortest time of the OD pair. Averages are over
    completed trips, as UXsim reports them.
    """

    vehicles: int
    completed_trips: int
    total_travel_time_s: float
    average_travel_time_s: float
    total_delay_s: float
    average_delay_s: float
    stranded_vehicles: int
    unfinished_vehicles: int

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class LinkSeries:
    """Per-link state sampled every record interval: arrays of shape (T, m).

    Attributes
    ----------
    times_s : (T,) float, sample times
    vehicles : vehicles on the link
    queue_veh : vehicles that reached the downstream end and wait to leave
    flow_vps : outflow over the interval before the sample, veh/s
    density_vpm : vehicles per metre of link
    speed_mps : link length over the current travel time (free-flow plus queue)
    grade : congestion grade 0..4 (see :mod:`scenarios.traffic.grades`)
    """

    times_s: FloatArray
    vehicles: FloatArray
    queue_veh: FloatArray
    flow_vps: FloatArray
    density_vpm: FloatArray
    speed_mps: FloatArray
    grade: IntArray

    FIELDS = ("vehicles", "queue_veh", "flow_vps", "density_vpm", "speed_mps", "grade")


@dataclass
class Result:
    """Outcome of one traffic drill.

    Attributes
    ----------
    trips : trip statistics
    link_names, link_codes : (m,) link identities (road object codes for the viewer)
    series : per-link time series
    stranded_at : node name -> vehicles that had no route left to their destination there
    closures : the closure events applied (as dicts)
    clear_time_s : when the last vehicle arrived or was stranded (``None``: not all did)
    wall_s : wall-clock time of the run
    """

    trips: TripStats
    link_names: list[str]
    link_codes: list[str]
    series: LinkSeries
    stranded_at: dict[str, int] = field(default_factory=dict)
    closures: list[dict[str, Any]] = field(default_factory=list)
    clear_time_s: float | None = None
    wall_s: float = 0.0

    def summary(self) -> dict[str, Any]:
        """The CLI contract: vehicles, completed trips, travel times, delay, wall time."""
        t = self.trips
        return {
            "vehicles": t.vehicles,
            "completed_trips": t.completed_trips,
            "total_travel_time_s": round(t.total_travel_time_s, 3),
            "average_travel_time_s": round(t.average_travel_time_s, 3),
            "average_delay_s": round(t.average_delay_s, 3),
            "wall_s": round(self.wall_s, 4),
        }

    def link_summary(self) -> dict[str, dict[str, Any]]:
        """Per road (keyed by code): worst grade, peak queue, slowest speed, when it recovered."""
        s = self.series
        out: dict[str, dict[str, Any]] = {}
        if not s.times_s.size:
            return out
        worst = s.grade.max(axis=0)
        peak_queue = s.queue_veh.max(axis=0)
        slowest = s.speed_mps.min(axis=0)
        congested = s.grade >= 3
        last = np.where(
            congested.any(axis=0),
            s.times_s.size - 1 - np.argmax(congested[::-1], axis=0),
            -1,
        )
        for i, code in enumerate(self.link_codes):
            recovered = None
            if last[i] >= 0 and last[i] + 1 < s.times_s.size:
                recovered = float(s.times_s[last[i] + 1])
            out[code] = {
                "name": self.link_names[i],
                "worst_grade": int(worst[i]),
                "worst_grade_name": GRADE_NAMES[int(worst[i])],
                "peak_queue_veh": float(peak_queue[i]),
                "min_speed_mps": round(float(slowest[i]), 3),
                "recovered_at_s": recovered,
            }
        return out

    def features(self) -> dict[str, Any]:
        """Per-feature values for the viewer: one entry per road code, one value per sample."""
        s = self.series
        return {
            "times_s": s.times_s.tolist(),
            "grades": list(GRADE_NAMES),
            "features": {
                code: {
                    "grade": s.grade[:, i].tolist(),
                    "speed_mps": np.round(s.speed_mps[:, i], 3).tolist(),
                    "queue_veh": s.queue_veh[:, i].tolist(),
                }
                for i, code in enumerate(self.link_codes)
            },
        }

    def to_dict(self) -> dict[str, Any]:
        s = self.series
        return {
            "summary": self.summary(),
            "trips": self.trips.to_dict(),
            "links": {"names": self.link_names, "codes": self.link_codes},
            "series": {
                "times_s": s.times_s.tolist(),
                **{name: np.round(getattr(s, name), 4).tolist() for name in LinkSeries.FIELDS},
            },
            "link_summary": self.link_summary(),
            "stranded_at": self.stranded_at,
            "closures": self.closures,
            "clear_time_s": self.clear_time_s,
            "wall_s": self.wall_s,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Result:
        series = data["series"]
        return cls(
            trips=TripStats(**data["trips"]),
            link_names=list(data["links"]["names"]),
            link_codes=list(data["links"]["codes"]),
            series=LinkSeries(
                times_s=np.asarray(series["times_s"], dtype=np.float64),
                vehicles=np.asarray(series["vehicles"], dtype=np.float64),
                queue_veh=np.asarray(series["queue_veh"], dtype=np.float64),
                flow_vps=np.asarray(series["flow_vps"], dtype=np.float64),
                density_vpm=np.asarray(series["density_vpm"], dtype=np.float64),
                speed_mps=np.asarray(series["speed_mps"], dtype=np.float64),
                grade=np.asarray(series["grade"], dtype=np.int64),
            ),
            stranded_at={str(k): int(v) for k, v in data.get("stranded_at", {}).items()},
            closures=list(data.get("closures", [])),
            clear_time_s=data.get("clear_time_s"),
            wall_s=float(data.get("wall_s", 0.0)),
        )
