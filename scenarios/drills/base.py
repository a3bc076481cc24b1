"""What every drill is: a typed spec, a check against the twin, and a run that returns a
typed result.

A drill module (``scenarios/drills/traffic.py`` …) defines one :class:`Drill`::

    DRILL = Drill(
        name="traffic",
        spec=TrafficDrill,              # a pydantic model: the body of POST /drills/traffic
        help="traffic drill on a road network with closures",
        inputs=("traffic/NAME_nodes.csv", "traffic/NAME.osm.pbf"),
        prepare=prepare,                # (spec, PrepareContext) -> resolved spec
        run=run,                        # (resolved spec, RunContext) -> RunResult
    )

``prepare`` runs where the request arrives (the API process, the CLI): it checks the spec
against the CIM and the live twin (codes exist, the named inputs exist, a venue's exits) and
*resolves* what would change between now and the run — live rain becomes the rows it read,
live room counts become loads, ``closures_from`` becomes closures — so the stored spec alone
reproduces the run. It raises :class:`DrillRequestError` (or ``NotFoundError``) and starts
nothing. ``run`` runs in a worker process (or a Ray task) with only the store, its folders
and a progress callback; it never touches HTTP, the live twin or global state, and returns a
:class:`RunResult` the runner stores: summary KPIs, per-object values keyed by CIM code, time
series, files in the run's folder, layers for the viewer and drill alerts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict

from cim.errors import TwinError
from cim.store import Store

if TYPE_CHECKING:
    from scenarios.runs.store import RunStore
    from twin.alerts import DrillAlert
    from twin.live import LiveTwin

#: ``(fraction 0..1, message)``; raises :class:`RunCancelledError` once the run is cancelled.
Progress = Callable[[float, str], None]


class DrillRequestError(TwinError):
    """A drill's spec is malformed, out of bounds, or contradicts the twin (400)."""


class DrillLimitError(DrillRequestError):
    """A spec goes beyond a bound of the service once measured against the twin (a venue's
    cells, a building's occupants, a network's samples) (422); names the fields and the
    computed figure."""


class RunCancelledError(TwinError):
    """Raised inside a run by its progress callback once the run is cancelled."""


class DrillSpec(BaseModel):
    """The base of every drill's request model: unknown fields are refused, and every
    field is bounded (``Field(ge=..., le=...)``), its unit in its name."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    def site_name(self) -> str | None:
        """The CIM site the run is on (for listing and scoping), or ``None``."""
        site = getattr(self, "site", None)
        return site if isinstance(site, str) else None

    def unit_code(self) -> str | None:
        """The CIM object whose unit pilot may start this run (an evacuation's building),
        or ``None`` when only planners may."""
        return None


S = TypeVar("S", bound=DrillSpec)


@dataclass
class PrepareContext:
    """What ``prepare`` may read.

    Attributes
    ----------
    store : the CIM store (read only)
    data_dir : the server's catalogue of named inputs (``assets/``)
    cache_dir : derived files shared between runs (a venue's cell cache)
    store_url : the store's URL (a helper that opens its own connection)
    live : the live twin, when it runs (live rain, people counters)
    runs : earlier runs (``closures_from``, baselines)
    """

    store: Store
    data_dir: Path
    cache_dir: Path
    store_url: str
    live: LiveTwin | None = None
    runs: RunStore | None = None


@dataclass
class RunContext:
    """What ``run`` may use, in a worker process.

    Attributes
    ----------
    store : the CIM store (read only; the worker's own connection)
    data_dir, cache_dir : as in :class:`PrepareContext`
    files_dir : this run's own folder (exists; removed with the run)
    progress : report progress; raises :class:`RunCancelledError` once cancelled
    run_id : the run's id (drill alerts name it)
    """

    store: Store
    data_dir: Path
    cache_dir: Path
    files_dir: Path
    progress: Progress
    run_id: str = ""


@dataclass(frozen=True)
class ObjectValue:
    """One result of a run on one CIM object.

    Attributes
    ----------
    code : the CIM code
    metric : what was measured (``max_depth_m``, ``worst_grade``, ``max_density_pm2``)
    value : its value (finite)
    first_t_s : simulated seconds of the first threshold crossing, where it applies
    """

    code: str
    metric: str
    value: float
    first_t_s: float | None = None


@dataclass(frozen=True)
class Series:
    """A metric over time for several objects.

    Attributes
    ----------
    metric : what the values are (``depth_m``, ``speed_kmh``)
    times_s : (n,) float, simulated seconds
    codes : the m CIM codes (or a drill's own ids where no CIM object exists)
    values : (n, m) float
    unit : the values' unit
    """

    metric: str
    times_s: NDArray[np.float64]
    codes: tuple[str, ...]
    values: NDArray[np.float64]
    unit: str = ""


@dataclass(frozen=True)
class RunFile:
    """A file the run wrote into its folder.

    Attributes
    ----------
    name : file name in the run's folder (``[a-z0-9_-]+\\.(png|tif|json)``)
    media_type : ``image/png``, ``image/tiff``...
    """

    name: str
    media_type: str


@dataclass(frozen=True)
class LayerValues:
    """A value layer the run leaves on a site for the viewer (``code -> value``)."""

    site: str
    name: str
    values: dict[str, float]
    legend: str = ""
    unit: str = ""


@dataclass
class RunResult:
    """What a run found.

    Attributes
    ----------
    summary : KPIs (JSON-safe scalars)
    detail : the drill's whole JSON result (files named by their ``RunFile.name``)
    objects : per-object values by CIM code
    series : time series
    files : files written into the run's folder
    layers : value layers for the viewer
    alerts : drill alerts to raise in the live twin
    """

    summary: dict[str, Any]
    detail: dict[str, Any] = field(default_factory=dict)
    objects: list[ObjectValue] = field(default_factory=list)
    series: list[Series] = field(default_factory=list)
    files: list[RunFile] = field(default_factory=list)
    layers: list[LayerValues] = field(default_factory=list)
    alerts: list[DrillAlert] = field(default_factory=list)


@dataclass(frozen=True)
class Drill(Generic[S]):
    """One drill: its spec model, check and run.

    Attributes
    ----------
    name : the drill's name (``traffic``, ``flood``, ``crowd``, ``evacuation``)
    spec : the pydantic request model
    help : one line for ``twin run --help`` and ``GET /drills``
    inputs : catalogue patterns of the named inputs it runs on (``traffic/NAME.osm``)
    prepare : checks the spec against the twin; returns the resolved spec
    run : executes the resolved spec
    max_wall_s : wall-time bound of one run (the runner fails it past this)
    max_memory_mb : memory bound of one run's process
    """

    name: str
    spec: type[S]
    help: str
    inputs: tuple[str, ...]
    prepare: Callable[[S, PrepareContext], S]
    run: Callable[[S, RunContext], RunResult]
    max_wall_s: float = 86_400.0
    max_memory_mb: int = 8_000
