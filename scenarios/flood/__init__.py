"""Flood drills: SWMM networks routed by numpy kernels under a SimPy model.

Entry point: :func:`run` takes a :class:`FloodSpec` and returns a :class:`FloodResult`.

Modules: ``swmm_inp`` (reader), ``network`` (objects), ``arrays`` (frozen columns),
``xsect`` (cross-section tables), ``runoff`` and ``kernel`` (pure numpy), ``controls``
(SWMM rules), ``model`` (SimPy), ``spec`` (dataclasses).
"""

from __future__ import annotations

from collections.abc import Callable

from scenarios.flood.spec import DesignStorm, FloodResult, FloodSpec, LinkSetting, PumpFailure

__all__ = ["DesignStorm", "FloodResult", "FloodSpec", "LinkSetting", "PumpFailure", "run"]


def run(spec: FloodSpec, progress: Callable[[float, str], None] | None = None) -> FloodResult:
    """Read the spec's SWMM file and route it.

    Raises
    ------
    cim.errors.SourceError
        If the file is malformed or uses an unsupported feature.
    cim.errors.TwinError
        If the spec names unknown objects or the routing becomes unstable.
    """
    from scenarios.flood.model import DrainageModel
    from scenarios.flood.rain import apply_gauge_rain, apply_storm
    from scenarios.flood.swmm_inp import load_swmm_inp

    # a design storm replaces every gauge's rain: the file's rain files are then not needed
    net = load_swmm_inp(spec.inp, rain_files=spec.storm is None)
    if spec.storm is not None:
        apply_storm(net, spec.storm)
    if spec.gauge_rain_mm_h is not None:
        apply_gauge_rain(net, spec.gauge_rain_mm_h)
    return DrainageModel(net, spec, progress).run()
