"""Traffic drills (道路交通): a mesoscopic kinematic-wave model over real road networks.

``run(spec, progress=None) -> Result`` is the one entry point; :mod:`.spec` holds the
inputs, :mod:`.kernel` the numpy link transmission model, :mod:`.model` the SimPy actors,
:mod:`.loaders` the UXsim CSV and closure readers.
"""

from __future__ import annotations

from scenarios.traffic.kernel import StabilityError
from scenarios.traffic.loaders import load_closures, load_uxsim_csv
from scenarios.traffic.model import run
from scenarios.traffic.result import LinkSeries, Result, TripStats
from scenarios.traffic.spec import (
    Closure,
    DemandWindow,
    Metering,
    RoadNetwork,
    SignalPlan,
    TrafficSpec,
)

__all__ = [
    "Closure",
    "DemandWindow",
    "LinkSeries",
    "Metering",
    "Result",
    "RoadNetwork",
    "SignalPlan",
    "StabilityError",
    "TrafficSpec",
    "TripStats",
    "load_closures",
    "load_uxsim_csv",
    "run",
]
