"""Fixtures of the drill tests (``conftest`` imports them): a small store of real sample
sites — Merewether's terrain, houses and road, West Oakland's streets, Bellinge's drainage
network, the Duplex building when ifcopenshell is installed — and contexts over it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from cim.errors import NotFoundError
from cim.importer import import_source
from cim.loaders import LoadOptions
from cim.store import Store, open_store
from scenarios.drills.base import PrepareContext, RunContext

ASSETS = Path(__file__).resolve().parents[3] / "assets"


@dataclass
class Sites:
    """The store and the codes the tests need."""

    path: Path
    store: Store
    buildings: set[str]
    road: str
    oakland_roads: dict[str, str]  # OSM way id -> road code
    bellinge_codes: dict[str, str]  # SWMM name -> code
    tmp: Path
    building: str | None = None  # the Duplex
    storeys: dict[str, str] = field(default_factory=dict)


@pytest.fixture(scope="session")
def sites(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sites]:
    tmp = tmp_path_factory.mktemp("drills")
    path = tmp / "t.db"
    store = open_store(path)
    try:
        for source in (
            ASSETS / "merewether" / "merewether_dtm_1m_epsg32756.tif",
            ASSETS / "merewether" / "merewether_houses_epsg32756.geojson",
            ASSETS / "flood" / "merewether_road.geojson",
        ):
            import_source(
                store, source, site="merewether", options=LoadOptions(default_height_m=6.0)
            )
        osm = ASSETS / "traffic" / "west_oakland.osm"
        import_source(store, osm, site="oakland")
        import_source(
            store,
            ASSETS / "swmm" / "bellinge_small.inp",
            site="bellinge",
            options=LoadOptions(crs="EPSG:32632"),
        )
        codes = {
            str(o.attributes["swmm_name"]): o.code
            for o in store.all_objects("bellinge")
            if "swmm_name" in o.attributes
        }
        (road,) = store.by_kind("merewether", "Road")
        found = Sites(
            path=path,
            store=store,
            buildings={o.code for o in store.by_kind("merewether", "Building")},
            road=road.code,
            oakland_roads=store.codes_of_source("oakland", osm.name),
            bellinge_codes=codes,
            tmp=tmp,
        )
        try:
            import ifcopenshell  # noqa: F401
        except ImportError:
            pass
        else:
            import_source(
                store,
                ASSETS / "ifc" / "Duplex_A_20110907.ifc",
                site="campus",
                options=LoadOptions(at=(85000.0, 446000.0, 30.0), crs="EPSG:28992"),
            )
            (building,) = store.by_kind("campus", "IfcBuilding")
            found.building = building.code
            found.storeys = {o.name: o.code for o in store.by_kind("campus", "IfcBuildingStorey")}
        yield found
    finally:
        store.close()


class FakeRuns:
    """Earlier runs by id, as the run store answers ``get``."""

    def __init__(self, runs: dict[str, Any]) -> None:
        self.runs = runs

    def get(self, run_id: str) -> Any:
        if run_id not in self.runs:
            raise NotFoundError(f"no run {run_id!r}")
        return self.runs[run_id]


def run_record(drill: str, site: str, state: str, result: dict[str, Any]) -> Any:
    """A run record with the fields ``prepare`` reads."""
    return SimpleNamespace(kind="drill", drill=drill, site=site, state=state, result=result)


@pytest.fixture
def prepare_ctx(sites: Sites) -> PrepareContext:
    return PrepareContext(sites.store, ASSETS, sites.tmp / "cache", str(sites.path))


@pytest.fixture
def run_ctx(sites: Sites, tmp_path: Path) -> RunContext:
    seen: list[float] = []

    def progress(fraction: float, message: str) -> None:
        assert 0.0 <= fraction <= 1.0 + 1e-9, (fraction, message)
        seen.append(fraction)

    files = tmp_path / "files"
    files.mkdir()
    context = RunContext(sites.store, ASSETS, sites.tmp / "cache", files, progress, "r_test")
    context.seen = seen  # type: ignore[attr-defined]
    return context
