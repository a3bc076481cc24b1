"""Crowd drills (大客流): people as array rows walking a discretised venue to its exits.

``run(spec, progress=None) -> CrowdResult`` is the entry point for the API and the CLI;
``kernel`` is pure numpy, ``model`` the SimPy integrator and actors, ``spec`` the dataclasses,
``venue`` the geometry readers, ``grid`` the discretisation and walking distances.
"""

from __future__ import annotations

from scenarios.crowd.model import run, simulate
from scenarios.crowd.spec import (
    Arrival,
    CrowdResult,
    CrowdSpec,
    ExitMeasure,
    FundamentalDiagram,
    OneWay,
    Release,
)
from scenarios.crowd.venue import Venue, load_venue, venue_from_geojson, venue_from_wkt

__all__ = [
    "Arrival",
    "CrowdResult",
    "CrowdSpec",
    "ExitMeasure",
    "FundamentalDiagram",
    "OneWay",
    "Release",
    "Venue",
    "load_venue",
    "run",
    "simulate",
    "venue_from_geojson",
    "venue_from_wkt",
]
