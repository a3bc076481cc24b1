"""Fuzzing every loader through the importer: cut, corrupted and extreme files.

Each example is one small sample file, cut at a drawn offset, with one byte replaced, or with
one number replaced by an extreme one (huge, NaN, infinite, zero). Either the importer refuses
it with a :class:`~cim.errors.SourceError` naming the file, and a store already holding a site
is left exactly as it was, or it imports it and the store holds what the report says. No other
exception may escape. The outcomes are counted per loader (``FUZZ_OUTCOMES``; with
``TWIN_FUZZ_REPORT=path`` they are written there as JSON).
"""

from __future__ import annotations

import collections
import json
import math
import os
import re
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cim.errors import SourceError
from cim.importer import import_source
from cim.loaders import LoadOptions
from cim.loaders.limits import MAX_SITE_EXTENT_M
from cim.store import open_store
from tests.loaders import bad_files
from tests.loaders.test_bad_files import snapshot

EXAMPLES = int(
    os.environ.get("TWIN_FUZZ_EXAMPLES", "25")
)  # more to hunt, with HYPOTHESIS_PROFILE=explore
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
#: loader -> outcome -> count, over the whole module
FUZZ_OUTCOMES: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
#: loader -> the refusal messages seen (the file's temporary folder left out)
REFUSALS: dict[str, list[str]] = collections.defaultdict(list)

EXTREMES = ("1e308", "-1e308", "1e400", "NaN", "Infinity", "-Infinity", "0", "-0", "1e-320")
_NUMBER = re.compile(rb"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?")


@st.composite
def mutations(draw: st.DrawFn, size: int, numbers: int) -> tuple[str, int, bytes]:
    """``(kind, where, what)``: cut at ``where``, replace byte ``where`` with ``what``, or
    replace number token ``where`` with the extreme ``what``."""
    kinds = ["cut", "byte"] + (["extreme"] if numbers else [])
    kind = draw(st.sampled_from(kinds))
    if kind == "cut":
        return kind, draw(st.integers(0, size - 1)), b""
    if kind == "byte":
        return kind, draw(st.integers(0, size - 1)), bytes([draw(st.integers(0, 255))])
    return kind, draw(st.integers(0, numbers - 1)), draw(st.sampled_from(EXTREMES)).encode()


def mutate(raw: bytes, kind: str, where: int, what: bytes) -> bytes:
    if kind == "cut":
        return raw[:where]
    if kind == "byte":
        return raw[:where] + what + raw[where + 1 :]
    token = list(_NUMBER.finditer(raw))[where]
    return raw[: token.start()] + what + raw[token.end() :]


@pytest.fixture(scope="module")
def samples(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    """A small valid file per loader."""
    assets = Path(__file__).parent.parent.parent / "assets"
    folder = tmp_path_factory.mktemp("fuzz-samples")
    out = {
        "cityjson": assets / "cityjson" / "rotterdam_subset.city.json",
        "geojson": assets / bad_files.HOUSES,
        "swmm": assets / bad_files.BELLINGE,
        "osm": assets / bad_files.OAKLAND,
        "ifc": _small_ifc(folder / "house.ifc"),
        "osm.pbf": _pbf(assets / bad_files.OAKLAND, folder / "oakland.osm.pbf"),
        "dem": _small_dem(folder / "dem.tif"),
        "cityjsonseq": _head(
            assets / "cityjson" / "3dbag_v210908_tile901_trimmed.city.jsonl", 4, folder
        ),
        "obj": _small_obj(folder / "blocks.obj"),
        "glb": _small_glb(folder / "blocks.glb"),
    }
    yield out


OPTIONS = {
    "cityjson": LoadOptions(crs="EPSG:28992"),
    "geojson": LoadOptions(default_height_m=6.0),
    "swmm": LoadOptions(crs="EPSG:32632"),
    "osm": LoadOptions(),
    "osm.pbf": LoadOptions(),
    "ifc": LoadOptions(),
    "dem": LoadOptions(),
    "cityjsonseq": LoadOptions(),
    "obj": LoadOptions(crs="EPSG:28992", offset=(85000.0, 446000.0, 0.0)),
    "glb": LoadOptions(crs="EPSG:28992", offset=(85000.0, 446000.0, 0.0), up_axis="y"),
}
SUFFIX = {
    "cityjson": ".city.json",
    "cityjsonseq": ".city.jsonl",
    "osm.pbf": ".osm.pbf",
    "dem": ".tif",
    "swmm": ".inp",
}
#: binary samples: no number tokens to replace
BINARY = ("osm.pbf", "dem", "glb")


def _small_ifc(path: Path) -> Path:
    """An IFC4 storey with one wall, placed by IfcMapConversion (EPSG:28992)."""
    import ifcopenshell.api
    import ifcopenshell.api.aggregate
    import ifcopenshell.api.context
    import ifcopenshell.api.geometry
    import ifcopenshell.api.georeference
    import ifcopenshell.api.project
    import ifcopenshell.api.root
    import ifcopenshell.api.spatial
    import ifcopenshell.api.unit

    api = ifcopenshell.api
    f = api.project.create_file(version="IFC4")
    project = api.root.create_entity(f, ifc_class="IfcProject", name="P")
    api.unit.assign_unit(f, length={"is_metric": True, "raw": "METERS"})
    model = api.context.add_context(f, context_type="Model")
    body = api.context.add_context(
        f, context_type="Model", context_identifier="Body", target_view="MODEL_VIEW", parent=model
    )
    site = api.root.create_entity(f, ifc_class="IfcSite", name="S")
    building = api.root.create_entity(f, ifc_class="IfcBuilding", name="B")
    storey = api.root.create_entity(f, ifc_class="IfcBuildingStorey", name="G")
    api.aggregate.assign_object(f, products=[site], relating_object=project)
    api.aggregate.assign_object(f, products=[building], relating_object=site)
    api.aggregate.assign_object(f, products=[storey], relating_object=building)
    wall = api.root.create_entity(f, ifc_class="IfcWall", name="W")
    api.geometry.edit_object_placement(f, product=wall, matrix=np.eye(4))
    shape = api.geometry.add_wall_representation(f, context=body, length=5, height=3, thickness=0.2)
    api.geometry.assign_representation(f, product=wall, representation=shape)
    api.spatial.assign_container(f, products=[wall], relating_structure=storey)
    api.georeference.add_georeferencing(f)
    api.georeference.edit_georeferencing(
        f,
        projected_crs={"Name": "EPSG:28992"},
        coordinate_operation={"Eastings": 85000.0, "Northings": 446000.0, "Scale": 1.0},
    )
    f.write(str(path))
    return path


def _head(path: Path, lines: int, folder: Path) -> Path:
    """The first ``lines`` lines of a CityJSONSeq file: its header and a few features."""
    out = folder / path.name
    out.write_bytes(b"".join(path.read_bytes().splitlines(keepends=True)[:lines]))
    return out


def _blocks() -> list[Any]:
    import trimesh

    return [
        trimesh.creation.box(extents=(10, 8, 6 + i)).apply_translation((15 * i, 0, 3))
        for i in range(3)
    ]


def _small_obj(path: Path) -> Path:
    """Three named boxes as OBJ text."""
    lines, base = [], 1
    for i, mesh in enumerate(_blocks()):
        lines.append(f"o block{i}")
        lines += [f"v {x:.3f} {y:.3f} {z:.3f}" for x, y, z in mesh.vertices]
        lines += [f"f {a + base} {b + base} {c + base}" for a, b, c in mesh.faces]
        base += len(mesh.vertices)
    path.write_text("\n".join(lines) + "\n")
    return path


def _small_glb(path: Path) -> Path:
    """Three named boxes as a GLB scene."""
    import trimesh

    scene = trimesh.Scene()
    for i, mesh in enumerate(_blocks()):
        scene.add_geometry(mesh, node_name=f"block{i}", geom_name=f"block{i}")
    path.write_bytes(scene.export(file_type="glb"))
    return path


def _pbf(source: Path, path: Path) -> Path:
    import osmium

    writer = osmium.SimpleWriter(str(path))
    try:
        for obj in osmium.FileProcessor(str(source)):
            writer.add(obj)
    finally:
        writer.close()
    return path


def _small_dem(path: Path) -> Path:
    import rasterio
    from rasterio.transform import Affine

    rows, cols = 24, 32
    y, x = np.mgrid[0:rows, 0:cols]
    heights = (10 + 0.1 * x + 0.05 * y).astype(np.float32)
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        height=rows,
        width=cols,
        count=1,
        dtype="float32",
        crs="EPSG:32756",
        transform=Affine(1.0, 0.0, 382400.0, 0.0, -1.0, 6354500.0),
    ) as dataset:
        dataset.write(heights, 1)
    return path


def try_import(loader: str, raw: bytes, sample: Path) -> str:
    """Import ``raw`` as a ``loader`` file into a store holding the valid sample; the
    outcome ``refused`` or ``imported``, checked."""
    options = OPTIONS[loader]
    with tempfile.TemporaryDirectory(prefix="fuzz-") as name:
        folder = Path(name)
        path = folder / f"bad{SUFFIX.get(loader, sample.suffix)}"
        path.write_bytes(raw)
        store = open_store(folder / "t.db")
        try:
            import_source(store, sample, site="held", options=options)
            before = snapshot(store)
            try:
                report = import_source(store, path, site="held", options=options)
            except SourceError as exc:
                assert exc.path == str(path), exc
                assert str(path) in str(exc)
                assert snapshot(store) == before, f"the store changed on a refusal: {exc}"
                REFUSALS[loader].append(str(exc).replace(str(folder), ""))
                return "refused"
            site = store.site("held")
            assert report.objects > 0
            counts = store.codes_of_source("held", path.name)
            assert len(counts) == report.objects
            assert site.bbox is not None and all(math.isfinite(v) for v in site.bbox)
            width = max(site.bbox[3] - site.bbox[0], site.bbox[4] - site.bbox[1])
            assert width <= MAX_SITE_EXTENT_M
            return "imported"
        finally:
            store.close()


def _fuzz(loader: str, samples: dict[str, Path]) -> Callable[..., None]:
    sample = samples[loader]
    raw = sample.read_bytes()
    numbers = 0 if loader in BINARY else len(_NUMBER.findall(raw))

    @FUZZ
    @given(mutations(len(raw), numbers))
    def run(mutation: tuple[str, int, bytes]) -> None:
        outcome = try_import(loader, mutate(raw, *mutation), sample)
        FUZZ_OUTCOMES[loader][outcome] += 1
        FUZZ_OUTCOMES[loader][f"{mutation[0]}:{outcome}"] += 1

    return run


@pytest.mark.parametrize(
    "loader",
    [
        "cityjson",
        "cityjsonseq",
        "geojson",
        "ifc",
        "swmm",
        "osm",
        "osm.pbf",
        "dem",
        "obj",
        "glb",
    ],
)
def test_fuzzed_files_are_refused_or_imported(loader: str, samples: dict[str, Path]) -> None:
    _fuzz(loader, samples)()
    outcomes = FUZZ_OUTCOMES[loader]
    assert outcomes["refused"] + outcomes["imported"] >= EXAMPLES
    _write_report()


def _write_report() -> None:
    report = os.environ.get("TWIN_FUZZ_REPORT")
    if report:
        found = {"outcomes": FUZZ_OUTCOMES, "refusals": REFUSALS}
        Path(report).write_text(json.dumps(found, indent=1, sort_keys=True))


def test_extreme_numbers_in_a_dem(samples: dict[str, Path]) -> None:
    """A DEM whose heights or transform hold extreme values: refused or imported, never
    another error."""
    import rasterio

    for value in (np.nan, np.inf, -np.inf, 3.0e38, -3.0e38, 0.0):
        with tempfile.TemporaryDirectory(prefix="fuzz-dem-") as name:
            path = Path(name) / "dem.tif"
            with rasterio.open(samples["dem"]) as source:
                profile = source.profile
                heights = source.read(1)
            heights[3, 4] = value
            with rasterio.open(path, "w", **profile) as target:
                target.write(heights, 1)
            outcome = try_import("dem", path.read_bytes(), samples["dem"])
            # no data (NaN) and plain numbers import; infinities and 3e38 m are refused
            assert outcome == ("imported" if np.isnan(value) or value == 0 else "refused")
            FUZZ_OUTCOMES["dem"][f"extreme:{outcome}"] += 1
            FUZZ_OUTCOMES["dem"][outcome] += 1
    _write_report()
