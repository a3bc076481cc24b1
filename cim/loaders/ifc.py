"""IFC building models (IFC2X3, IFC4), read and tessellated with IfcOpenShell.

Every spatial structure element (``IfcSite``, ``IfcBuilding``, ``IfcBuildingStorey``,
``IfcSpace``) and every physical element (walls, slabs, doors, windows, stairs, columns,
roofs, railings, furnishing, MEP...) becomes one object whose ``kind`` is its IFC class.
Opening elements (the voids cut into walls and slabs) are not objects: they are already
subtracted from their hosts' geometry.

The containment follows the file: spatial elements hang under the element that aggregates
them (``IfcRelAggregates``), physical elements under the element they are a part of, else
their spatial container (``IfcRelContainedInSpatialStructure``: a storey or a space). Two
links are cut so that each building is a management unit of its own: an ``IfcBuilding``
has no parent (its ``IfcSite`` is kept as the ``ifc_site`` attribute and is a unit of its
own), and ``IfcProject`` is not an object.

IfcOpenShell returns geometry in metres in the model's engineering frame. Real coordinates
come from, in this order: an explicit placement ``at = (X, Y, rotation_deg)``, the file's
``IfcMapConversion`` (IFC4), or, when a projected ``crs`` is given, the ``IfcSite``'s
``RefLatitude`` / ``RefLongitude`` / ``RefElevation`` turned by the model's ``TrueNorth``
(:mod:`cim.loaders.ifc_placement`). A file with none of them is refused: a building is
never placed by guess.

Before any of that the file must be whole: ending with ``END-ISO-10303-21;``, parsed without
an error in IfcOpenShell's log (a reference to a missing instance, a value of the wrong type)
and with finite numbers in every ``IfcCartesianPoint``. IfcOpenShell reads such files
without complaint, into a model with parts missing.
"""

from __future__ import annotations

import importlib
import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from cim.errors import SourceError
from cim.geometry.columns import MeshColumns
from cim.loaders.base import ParsedSource, SourceObject
from cim.loaders.ifc_placement import placement_of

#: Classes that are never objects: voids already subtracted from their hosts.
_SKIPPED = ("IfcOpeningElement", "IfcOpeningStandardCase", "IfcVoidingFeature")
_INSTALL = "pip install 'yiwang-citytwin[ifc]'"
_LOG_PREFIX = re.compile(r"^\[error\](\s*\[[^\]]*\])*")  # [error] [code] [time]
_LOG_USER = re.compile(r"used by instance #(\d+)")

Progress = Callable[[float, str], None]


def load_ifc(
    path: str | Path,
    *,
    crs: str | None = None,
    at: tuple[float, float, float] | None = None,
    threads: int = 1,
    progress: Progress | None = None,
) -> ParsedSource:
    """Parse an IFC file into one object per spatial structure element and element.

    Parameters
    ----------
    path : the ``.ifc`` file (STEP physical file)
    crs : CRS of the real coordinates, e.g. ``"EPSG:28992"``; overrides the
        ``IfcProjectedCRS`` name
    at : ``(X, Y, rotation_deg)`` placing the model origin at ``(X, Y)`` in ``crs``,
        rotated counter-clockwise by ``rotation_deg``; wins over ``IfcMapConversion``
        and the ``IfcSite`` reference point (used only when ``crs`` is given)
    threads : IfcOpenShell tessellation threads (1 or 2 on a shared machine)
    progress : called with the fraction done and a message

    Returns
    -------
    ParsedSource
        Format ``"ifc"``; ``source_id`` = GlobalId, ``kind`` = IFC class, ``name`` = the
        IFC ``Name`` (the GlobalId when empty); attributes ``GlobalId``, ``Name``,
        ``LongName``, ``Description``, ``ObjectType``, ``ifc_schema``, spatial
        ``Elevation``, the property and quantity sets flattened to ``"Set.Prop"``, and
        on spaces ``ifc_boundaries`` (their ``IfcRelSpaceBoundary`` rows).
        Objects without a representation (buildings, storeys) have empty mesh blocks;
        the importer gives them their children's extent.

    Raises
    ------
    SourceError
        If ifcopenshell is not installed, the file cannot be read as IFC (cut short, a
        dangling reference, a malformed value), holds no building elements, or cannot be
        placed: no ``at``, no ``IfcMapConversion`` and no usable ``IfcSite`` reference
        point in ``crs``.
    """
    path = Path(path)
    report = progress or (lambda fraction, message: None)
    ifcopenshell = _ifcopenshell(path)
    if not path.is_file():
        raise SourceError(path, "no such file")
    report(0.0, "read")
    _check_complete(path)
    ifcopenshell.get_log()  # empties the log: what follows is this file's
    try:
        model = ifcopenshell.open(str(path))
    except Exception as exc:  # ifcopenshell raises its own errors and RuntimeError
        raise SourceError(path, f"cannot read as IFC (truncated or corrupt?): {exc}") from None
    log = str(ifcopenshell.get_log())
    _check_points(path, model)  # first: it names the point a type error is in
    _check_parse_log(path, model, log)
    schema = str(model.schema)
    placement, file_crs, georef = placement_of(path, model, at, crs)
    products = [
        p
        for p in model.by_type("IfcProduct")
        if _is_object(p) and not any(p.is_a(s) for s in _SKIPPED)
    ]
    if not products:
        raise SourceError(path, "the file holds no IFC spatial or building elements")
    report(0.1, "structure")
    objects = [_object(p, schema) for p in products]
    known = {p.id() for p in products}
    for obj, product in zip(objects, products, strict=True):
        obj.parent_id = _parent(product, known)
        if product.is_a("IfcBuilding"):
            site = _module("ifcopenshell.util.element").get_aggregate(product)
            if site is not None and site.is_a("IfcSite"):
                obj.attributes["ifc_site"] = str(site.GlobalId)
    for obj in objects:
        if obj.kind == "IfcSite":
            obj.attributes.update(georef)
    boundaries = _space_boundaries(model)
    for obj, product in zip(objects, products, strict=True):
        if product.id() in boundaries:
            obj.attributes["ifc_boundaries"] = boundaries[product.id()]
    report(0.3, "tessellate")
    blocks = _tessellate(path, model, products, threads, report)
    geometry = _columns(blocks)
    geometry = geometry.transformed(placement(geometry.vertices))
    points = np.full((len(objects), 3), np.nan)
    origin = placement(np.zeros((1, 3)))[0]
    for i, obj in enumerate(objects):
        if obj.kind == "IfcSite" and len(blocks[i][1]) == 0:
            points[i] = origin  # a site without a shape stands at the model origin
    report(1.0, "done")
    return ParsedSource(path, "ifc", crs or file_crs, objects, geometry, points=points)


def _check_complete(path: Path) -> None:
    """Refuse a STEP file that does not end with ``END-ISO-10303-21;``: a file cut short
    (a failed download or copy) still parses, into a building with parts missing."""
    try:
        with path.open("rb") as handle:
            handle.seek(max(0, path.stat().st_size - 4096))
            tail = handle.read()
    except OSError as exc:
        raise SourceError(path, f"cannot read file: {exc.strerror}") from None
    if b"END-ISO-10303-21;" not in tail.upper():
        raise SourceError(path, "the file does not end with END-ISO-10303-21; (truncated?)")


def _check_parse_log(path: Path, model: Any, log: str) -> None:
    """Refuse a file whose parse logged an error (a reference to an instance the file does
    not hold, a value of the wrong type): IfcOpenShell reads those as nothing, and the
    element would be lost or misplaced without a word."""
    # "\n" only: a corrupt name may hold characters str.splitlines() breaks at
    errors = [line for line in log.split("\n") if line.startswith("[error]")]
    if not errors:
        return
    message = _LOG_PREFIX.sub("", errors[0]).strip()
    user = _LOG_USER.search(message)
    object_id = _instance_name(model, int(user.group(1))) if user else None
    more = f" (and {len(errors) - 1} more errors)" if len(errors) > 1 else ""
    raise SourceError(path, f"malformed IFC: {message}{more}", object_id)


def _check_points(path: Path, model: Any) -> None:
    """Refuse an ``IfcCartesianPoint`` whose coordinates are not finite numbers."""
    for point in model.by_type("IfcCartesianPoint"):
        coordinates = point.Coordinates
        if not coordinates or not all(
            isinstance(c, float | int) and not isinstance(c, bool) and math.isfinite(c)
            for c in coordinates
        ):
            raise SourceError(
                path,
                f"IfcCartesianPoint coordinates {tuple(coordinates or ())!r} are not finite "
                "numbers",
                f"#{point.id()}",
            )


def _instance_name(model: Any, number: int) -> str:
    """An instance as the user can find it: its GlobalId where it has one, else ``#n``."""
    try:
        instance = model.by_id(number)
    except RuntimeError:
        return f"#{number}"
    gid = getattr(instance, "GlobalId", None) if hasattr(instance, "GlobalId") else None
    return str(gid) if gid else f"#{number}"


def _module(name: str) -> Any:
    """An ifcopenshell module, untyped (its stubs are partial)."""
    return importlib.import_module(name)


def _ifcopenshell(path: Path) -> Any:
    try:
        for name in ("geom", "util.element", "util.unit"):
            _module(f"ifcopenshell.{name}")
        return _module("ifcopenshell")
    except ImportError:
        raise SourceError(
            path, f"reading IFC needs ifcopenshell, which is not installed: {_INSTALL}"
        ) from None


def _is_object(product: Any) -> bool:
    if product.is_a("IfcElement"):
        return True
    return bool(product.is_a("IfcSpatialStructureElement"))


def _object(product: Any, schema: str) -> SourceObject:
    util = _module("ifcopenshell.util.element")

    gid = str(product.GlobalId)
    attrs: dict[str, Any] = {"GlobalId": gid, "ifc_schema": schema}
    for name in ("Name", "LongName", "Description", "ObjectType", "Tag", "Elevation"):
        value = getattr(product, name, None) if hasattr(product, name) else None
        if value is not None and value != "":
            attrs[name] = _json_safe(value)
    try:
        psets = util.get_psets(product)
    except Exception:  # a malformed property set must not lose the object
        psets = {}
    for set_name, props in sorted(psets.items()):
        for prop, value in props.items():
            if prop == "id":
                continue
            attrs[f"{set_name}.{prop}"] = _json_safe(value)
    name = product.Name or getattr(product, "LongName", None) or gid
    return SourceObject(gid, str(product.is_a()), str(name), None, attrs)


def _space_boundaries(model: Any) -> dict[int, list[list[str | None]]]:
    """``IfcRelSpaceBoundary`` per space: ``[element GlobalId or None, PHYSICAL|VIRTUAL,
    INTERNAL|EXTERNAL]`` rows, sorted — which walls, slabs, doors and open (virtual)
    boundaries enclose each space."""
    found: dict[int, set[tuple[str, str, str]]] = {}
    for rel in model.by_type("IfcRelSpaceBoundary"):
        space = rel.RelatingSpace
        if space is None or not space.is_a("IfcSpace"):
            continue
        element = rel.RelatedBuildingElement
        gid = str(element.GlobalId) if element is not None else ""
        row = (gid, str(rel.PhysicalOrVirtualBoundary), str(rel.InternalOrExternalBoundary))
        found.setdefault(space.id(), set()).add(row)
    return {
        key: [[gid or None, kind, side] for gid, kind, side in sorted(rows)]
        for key, rows in found.items()
    }


def _parent(product: Any, known: set[int]) -> str | None:
    """GlobalId of the object that holds ``product`` (see the module notes)."""
    util = _module("ifcopenshell.util.element")

    if product.is_a("IfcBuilding") or product.is_a("IfcSite"):
        return None
    holder = util.get_aggregate(product)
    if holder is not None and holder.id() in known:
        return str(holder.GlobalId)
    if not product.is_a("IfcSpatialStructureElement") and not product.is_a("IfcSpace"):
        container = util.get_container(product)
        if container is not None and container.id() in known:
            return str(container.GlobalId)
    return None


def _json_safe(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if hasattr(value, "is_a"):  # an entity instance
        gid = getattr(value, "GlobalId", None) if hasattr(value, "GlobalId") else None
        return str(gid) if gid else f"#{value.id()}={value.is_a()}"
    return str(value)


def _tessellate(
    path: Path, model: Any, products: list[Any], threads: int, report: Progress
) -> list[tuple[NDArray[np.float64], NDArray[np.int64]]]:
    """World-coordinate triangles of each product, empty for those without a shape."""
    geom = _module("ifcopenshell.geom")
    settings = geom.settings()
    settings.set("use-world-coords", True)
    index = {p.id(): i for i, p in enumerate(products)}
    empty = (np.zeros((0, 3)), np.zeros((0, 3), dtype=np.int64))
    blocks: list[tuple[NDArray[np.float64], NDArray[np.int64]]] = [empty] * len(products)
    iterator = geom.iterator(settings, model, max(1, int(threads)), include=products)
    done = 0
    try:
        ok = iterator.initialize()
    except Exception as exc:
        raise SourceError(path, f"cannot tessellate the IFC geometry: {exc}") from None
    while ok:
        shape = iterator.get()
        i = index.get(shape.id)
        if i is not None:
            verts = np.asarray(shape.geometry.verts, dtype=np.float64).reshape(-1, 3)
            faces = np.asarray(shape.geometry.faces, dtype=np.int64).reshape(-1, 3)
            if len(faces) and np.isfinite(verts).all() and faces.max() < len(verts):
                blocks[i] = (verts, faces)
        done += 1
        if done % 50 == 0:
            report(0.3 + 0.7 * min(done / len(products), 1.0), "tessellate")
        ok = iterator.next()
    return blocks


def _columns(blocks: list[tuple[NDArray[np.float64], NDArray[np.int64]]]) -> MeshColumns:
    vcount = np.array([len(v) for v, _ in blocks], dtype=np.int64)
    fcount = np.array([len(f) for _, f in blocks], dtype=np.int64)
    vertex_offsets = np.concatenate(([0], np.cumsum(vcount))).astype(np.int64)
    faces = (
        np.concatenate([f for _, f in blocks]).reshape(-1, 3)
        + np.repeat(vertex_offsets[:-1], fcount)[:, None]
    )
    return MeshColumns(
        np.concatenate([v for v, _ in blocks]).reshape(-1, 3),
        faces.astype(np.int64),
        np.zeros(len(faces), dtype=np.uint8),
        vertex_offsets,
        np.concatenate(([0], np.cumsum(fcount))).astype(np.int64),
    )
