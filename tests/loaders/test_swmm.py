"""SWMM drainage networks as CIM objects: counts, codes, geometry, topology, refusals."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import networkx as nx
import numpy as np
import pytest

from cim.errors import CRSError, SourceError
from cim.importer import import_source
from cim.loaders import LoadOptions
from cim.loaders.swmm import MANHOLE_CLASS, load_swmm
from cim.model import CimObject
from cim.networks.drainage import LINK_KINDS, NODE_KINDS, codes_by_swmm_name, drainage_graph
from cim.store import Store

BELLINGE = LoadOptions(crs="EPSG:32632")  # assets/swmm/README.md
FILES = {
    "bellinge_small.inp": "EPSG:32632",
    "model_state_plane.inp": "EPSG:2817",
    "Pump_Control_Model.inp": "EPSG:2817",
}


def _rows(path: Path) -> dict[str, list[list[str]]]:
    """Data rows per section, read independently of the loader."""
    rows: dict[str, list[list[str]]] = {}
    section = ""
    for raw in path.read_text().splitlines():
        line = raw.split(";")[0].strip()
        if line.startswith("["):
            section = line.strip("[]").upper()
            rows.setdefault(section, [])
        elif line:
            rows[section].append(line.split())
    return rows


def _objects(store: Store, site: str, source: str) -> list[CimObject]:
    return [o for o in store.all_objects(site) if o.source == source]


@pytest.mark.parametrize("name", sorted(FILES))
def test_every_element_of_the_file_is_one_object(assets: Path, name: str) -> None:
    path = assets / "swmm" / name
    rows = _rows(path)
    parsed = load_swmm(path, FILES[name])
    kinds = Counter(o.kind for o in parsed.objects)
    nodes = sum(len(rows.get(s, [])) for s in ("JUNCTIONS", "STORAGE", "OUTFALLS", "DIVIDERS"))
    assert sum(kinds[k] for k in NODE_KINDS) == nodes
    assert kinds["Outfall"] == len(rows.get("OUTFALLS", []))
    assert kinds["Conduit"] == len(rows["CONDUITS"])
    assert kinds["Pump"] == len(rows.get("PUMPS", []))
    assert kinds["Subcatchment"] == len(rows.get("SUBCATCHMENTS", []))
    assert kinds["RainGage"] == len(rows.get("RAINGAGES", []))
    assert kinds["DrainageNetwork"] == 1
    names = [o.source_id for o in parsed.objects if o.kind in NODE_KINDS]
    assert sorted(names) == sorted(
        r[0] for s in ("JUNCTIONS", "STORAGE", "OUTFALLS") for r in rows.get(s, [])
    )
    # every node and link is drawn; nodes stand from invert to rim
    counts = np.diff(parsed.geometry.face_offsets)
    bounds = parsed.geometry.bounds()
    for obj, faces, box in zip(parsed.objects, counts, bounds, strict=True):
        if obj.kind in NODE_KINDS | LINK_KINDS:
            assert faces > 0, obj.source_id
        if obj.kind == "Manhole":
            assert box[2] == pytest.approx(obj.attributes["invert_m"], abs=1e-4)
            assert box[5] == pytest.approx(obj.attributes["rim_m"], abs=1e-4)


def test_bellinge_manholes_sit_where_the_utility_data_has_them(assets: Path) -> None:
    """The manholes of the Bellinge model (storage nodes with a shaft's constant area) are
    manholes at the coordinates and rims of the utility's own manhole layer."""
    parsed = load_swmm(assets / "swmm" / "bellinge_small.inp", "EPSG:32632")
    layer = json.loads((assets / "bellinge" / "bellinge_manholes.geojson").read_text())
    truth = {f["id"]: f for f in layer["features"]}
    manholes = {
        o.source_id: (o, fp)
        for o, fp in zip(parsed.objects, parsed.footprints or [], strict=True)
        if o.kind == "Manhole"
    }
    assert set(manholes) <= set(truth) and len(manholes) == 15
    for name, (obj, point) in manholes.items():
        x, y, rim = truth[name]["geometry"]["coordinates"]
        assert (point.x, point.y) == pytest.approx((x, y), abs=1e-6)
        assert obj.attributes["rim_m"] == pytest.approx(rim, abs=1e-3)
        assert obj.attributes["component_class"] == MANHOLE_CLASS


def test_codes_are_unique_well_formed_and_stable(store: Store, assets: Path) -> None:
    path = assets / "swmm" / "bellinge_small.inp"
    report = import_source(store, path, site="bellinge", options=BELLINGE)
    objects = _objects(store, "bellinge", path.name)
    assert len(objects) == report.objects == 46
    codes = [o.code for o in objects]
    assert len(set(codes)) == len(codes)
    for obj in objects:
        cell = store.get("bellinge", obj.parent or "")
        assert cell.kind == "GridCell" and len(cell.code) == 15
        if obj.kind == "Manhole":
            # GB/T 30428.2: county(6) + 01 公用设施 + 03 雨水井盖 + serial(6)
            assert len(obj.code) == 16 and obj.code[6:10] == MANHOLE_CLASS
            assert obj.attributes["BGID"] == cell.code
            assert cell.footprint.covers(obj.footprint)
        else:
            assert len(obj.code) == 21 and obj.code.startswith(cell.code) and obj.code.isdigit()
    again = import_source(store, path, site="bellinge", options=BELLINGE)
    assert again.objects == report.objects
    after = {o.source_id: o.code for o in _objects(store, "bellinge", path.name)}
    assert after == {o.source_id: o.code for o in objects}
    assert store.kind_counts("bellinge")["Manhole"] == 15


def test_conduits_join_their_nodes_and_the_graph_drains_to_the_outfall(
    store: Store, assets: Path
) -> None:
    path = assets / "swmm" / "bellinge_small.inp"
    import_source(store, path, site="bellinge", options=BELLINGE)
    objects = _objects(store, "bellinge", path.name)
    by_name = {o.attributes.get("swmm_name"): o for o in objects}
    rows = _rows(path)
    for name, start, stop, length, *_ in rows["CONDUITS"]:
        conduit = by_name[name]
        line = np.asarray(conduit.footprint.coords)
        assert line[0] == pytest.approx(np.asarray(by_name[start].footprint.coords)[0])
        assert line[-1] == pytest.approx(np.asarray(by_name[stop].footprint.coords)[0])
        assert conduit.attributes["length_m"] == pytest.approx(float(length), abs=1e-3)
    graph = drainage_graph(objects)
    assert graph.number_of_nodes() == 16 and graph.number_of_edges() == len(rows["CONDUITS"])
    assert nx.is_weakly_connected(graph)
    (outfall,) = [n for n, kind in graph.nodes(data="kind") if kind == "Outfall"]
    assert nx.ancestors(graph, outfall) == set(graph) - {outfall}
    for start, stop, code in graph.edges(keys=True):
        assert (
            store.get("bellinge", code).attributes["from_node"] == graph.nodes[start]["swmm_name"]
        )
        assert graph.nodes[stop]["swmm_name"] == store.get("bellinge", code).attributes["to_node"]
    drained = sum(len(s) for _, s in graph.nodes(data="subcatchments"))
    assert drained == len(rows["SUBCATCHMENTS"])
    names = codes_by_swmm_name(objects)
    assert names["G72F050_outfall"] == outfall


def test_the_state_plane_network_is_one_graph(assets: Path, store: Store) -> None:
    path = assets / "swmm" / "model_state_plane.inp"
    import_source(store, path, site="sp", options=LoadOptions(crs="EPSG:2817"))
    graph = drainage_graph(_objects(store, "sp", path.name))
    rows = _rows(path)
    assert graph.number_of_edges() == len(rows["CONDUITS"])
    assert nx.number_weakly_connected_components(graph) == 1


def test_an_inp_without_crs_is_refused_naming_the_file(store: Store, assets: Path) -> None:
    path = assets / "swmm" / "bellinge_small.inp"
    with pytest.raises(CRSError, match=r"bellinge_small\.inp.*--crs"):
        import_source(store, path, site="bellinge")
    assert store.find_site("bellinge") is None


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("47.4492480509699 0.01", "forty 0.01", r"line 142: length must be a number.*'forty'"),
        (
            "G72F821          G72F820 ",
            "G72F821          NOWHERE ",
            r"line 143: .*unknown node 'NOWHERE'",
        ),
        ("G72F813          583258.6799990733", "G72F813          east", r"line 208: x must be"),
        ("FLOW_UNITS           LPS", "FLOW_UNITS           LITRES", r"FLOW_UNITS\(=LITRES\)"),
    ],
)
def test_a_malformed_row_is_refused_with_its_line(
    tmp_path: Path, assets: Path, old: str, new: str, message: str
) -> None:
    text = (assets / "swmm" / "bellinge_small.inp").read_text()
    assert old in text
    bad = tmp_path / "bad.inp"
    bad.write_text(text.replace(old, new, 1))
    with pytest.raises(SourceError, match=message):
        load_swmm(bad, "EPSG:32632")


def test_named_sections_keep_their_name(tmp_path: Path, assets: Path) -> None:
    text = (assets / "swmm" / "bellinge_small.inp").read_text()
    old = "G72F821_G72F820_l1 CIRCULAR     0.2 "
    assert old in text
    street = tmp_path / "street.inp"
    street.write_text(text.replace(old, "G72F821_G72F820_l1 STREET FullStreet "))
    parsed = load_swmm(street, "EPSG:32632")
    (conduit,) = [o for o in parsed.objects if o.source_id == "G72F821_G72F820_l1"]
    assert conduit.attributes["shape"] == "STREET"
    assert conduit.attributes["section_name"] == "FullStreet"
