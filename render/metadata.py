"""Per-feature ids and property tables: ``EXT_mesh_features`` and ``EXT_structural_metadata``.

Each tile's features are rows ``0..n-1`` of one property table of class ``feature``: code
(semantic ``ID``), kind, name (semantic ``NAME``), source id, height and the site's attribute
columns. Strings are UTF-8 bytes with UINT32 offsets; numbers FLOAT64 with a no-data value.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson
from numpy.typing import NDArray

from cim.model import CimObject
from render.glb import GlbBuilder

FEATURES = "EXT_mesh_features"
METADATA = "EXT_structural_metadata"
CLASS = "feature"
#: Stands for a missing number (``-DBL_MAX``; JSON has no NaN).
NO_DATA = -1.7976931348623157e308

Column = tuple[str, str, str]


def metadata_schema(columns: list[Column]) -> dict[str, Any]:
    """The metadata schema shared by all tiles of a site."""
    properties: dict[str, Any] = {
        "code": {"type": "STRING", "semantic": "ID", "required": True},
        "kind": {"type": "STRING", "required": True},
        "name": {"type": "STRING", "semantic": "NAME", "required": True},
        "source_id": {"type": "STRING", "noData": ""},
        "height_m": {"type": "SCALAR", "componentType": "FLOAT64", "required": True},
    }
    for name, key, kind in columns:
        if kind == "FLOAT64":
            properties[name] = {
                "type": "SCALAR",
                "componentType": "FLOAT64",
                "noData": NO_DATA,
                "description": f"attribute {key!r}",
            }
        else:
            properties[name] = {"type": "STRING", "noData": "", "description": f"attribute {key!r}"}
    return {"id": "citytwin", "classes": {CLASS: {"name": "CIM feature", "properties": properties}}}


def _string_column(builder: GlbBuilder, values: list[str]) -> dict[str, Any]:
    encoded = [v.encode("utf-8") for v in values]
    offsets = np.r_[0, np.cumsum([len(b) for b in encoded])].astype(np.uint32)
    # a buffer view cannot be empty: a column of empty strings keeps one unused byte
    joined = b"".join(encoded) or b"\x00"
    return {
        "values": builder.add_view(joined, align=8),
        "stringOffsets": builder.add_view(offsets, align=8),
        "stringOffsetType": "UINT32",
    }


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return orjson.dumps(value).decode()


def add_property_table(
    builder: GlbBuilder,
    schema: dict[str, Any],
    columns: list[Column],
    objects: list[CimObject],
    heights_m: NDArray[np.float64],
) -> int:
    """Write the rows of ``objects`` as the glb's property table; returns its index."""
    properties: dict[str, Any] = {
        "code": _string_column(builder, [o.code for o in objects]),
        "kind": _string_column(builder, [o.kind for o in objects]),
        "name": _string_column(builder, [o.name for o in objects]),
        "source_id": _string_column(builder, [o.source_id or "" for o in objects]),
        "height_m": {"values": builder.add_view(heights_m.astype("<f8"), align=8)},
    }
    for name, key, kind in columns:
        raw = [o.attributes.get(key) for o in objects]
        if kind == "FLOAT64":
            numbers = np.array([NO_DATA if v is None else float(v) for v in raw], dtype="<f8")
            numbers[~np.isfinite(numbers)] = NO_DATA
            properties[name] = {"values": builder.add_view(numbers, align=8)}
        else:
            properties[name] = _string_column(builder, [_text(v) for v in raw])
    builder.use_extension(METADATA)
    builder.gltf.setdefault("extensions", {})[METADATA] = {
        "schema": schema,
        "propertyTables": [{"class": CLASS, "count": len(objects), "properties": properties}],
    }
    return 0


def feature_ids_extension(feature_count: int, table: int = 0) -> dict[str, Any]:
    """The ``EXT_mesh_features`` object of a primitive whose ``_FEATURE_ID_0`` indexes rows."""
    return {
        FEATURES: {
            "featureIds": [
                {"featureCount": int(feature_count), "attribute": 0, "propertyTable": table}
            ]
        }
    }
