"""Reading the integer arrays straight from CityJSON bytes gives exactly the plain parse."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from cim.loaders.cityjson import load_cityjson
from cim.loaders.jsonspans import cut_arrays, read_int_array

FILES = [
    "denhaag_01/denhaag_01_lod2.city.json",
    "cityjson/rotterdam_subset.city.json",
    "cityjson/zurich_subset_lod2.city.json",
    "cityjson/delft_bgt_lod1.city.json",
]


@pytest.mark.parametrize("name", FILES)
def test_fast_read_equals_plain_parse(assets: Path, name: str) -> None:
    fast = load_cityjson(assets / name)
    plain = load_cityjson(assets / name, fast=False)
    for key, array in plain.geometry.to_arrays().items():
        np.testing.assert_array_equal(fast.geometry.to_arrays()[key], array)
    assert [o.attributes for o in fast.objects] == [o.attributes for o in plain.objects]
    assert [f.wkb if f is not None else None for f in fast.footprints or []] == [
        f.wkb if f is not None else None for f in plain.footprints or []
    ]


def test_cut_keeps_strings_and_non_integer_arrays() -> None:
    raw = (
        b'{"a": {"boundaries": [[1, 2], [3]], "note": "\\"boundaries\\": [9]"},'
        b' "vertices": [[1,2,3]], "b": {"boundaries": [[1.5]]}, "c": {"boundaries": []}}'
    )
    reduced, spans, keys = cut_arrays(raw)
    doc = json.loads(reduced)
    assert doc["a"]["boundaries"] == -1 and doc["vertices"] == -2
    assert doc["a"]["note"] == '"boundaries": [9]'
    assert doc["b"]["boundaries"] == [[1.5]]  # not integers: left to the JSON parser
    assert spans == [b"[[1, 2], [3]]", b"[[1,2,3]]", b"[]"]
    assert keys == [b"boundaries", b"vertices", b"boundaries"]


def test_read_int_array_checks_the_shape() -> None:
    np.testing.assert_array_equal(
        read_int_array(b"[[1,2,3],\n [4,5,6]]", 3), [[1, 2, 3], [4, 5, 6]]
    )
    assert read_int_array(b"[[1,2],[3,4,5]]", 3) is None
    assert read_int_array(b"[[1,2,3],,[4,5,6]]", 3) is None


def test_an_attribute_named_boundaries_falls_back_to_the_plain_parse(
    tmp_path: Path, assets: Path
) -> None:
    doc = json.loads((assets / "cityjson/rotterdam_subset.city.json").read_text())
    first = next(iter(doc["CityObjects"]))
    doc["CityObjects"][first]["attributes"]["boundaries"] = [[1, 2], [3, 4]]
    path = tmp_path / "odd.city.json"
    path.write_text(json.dumps(doc, indent=1))
    parsed = load_cityjson(path)
    obj = next(o for o in parsed.objects if o.source_id == first)
    assert obj.attributes["boundaries"] == [[1, 2], [3, 4]]
    plain = load_cityjson(path, fast=False)
    np.testing.assert_array_equal(parsed.geometry.faces, plain.geometry.faces)
