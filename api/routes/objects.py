"""``/sites/{site}/objects`` and ``/sites/{site}/tree``: CIM objects, queries and the
containment tree, each limited to what the caller may see."""

from __future__ import annotations

from collections import deque
from typing import Annotated, Any

from fastapi import APIRouter, Query
from shapely.geometry import mapping

from api.auth import Reader
from api.errors import QueryError, responses
from api.params import parse_bbox, parse_point, parse_polygon
from api.routes.sites import scoped_view
from api.schemas import (
    ObjectDetailPublic,
    ObjectListPublic,
    ObjectPublic,
    TreeNodePublic,
    TreePublic,
)
from api.state import State
from cim.errors import NotFoundError
from cim.model import CimObject

router = APIRouter(prefix="/sites/{site}", tags=["objects"])

#: Most nodes one tree response holds.
TREE_NODE_CAP = 5000
#: Most objects one query returns.
MAX_LIMIT = 10_000

_SELECTORS = ("bbox", "point", "nearest", "within", "prefix")


@router.get("/objects/{code}", response_model=ObjectDetailPublic)
def read_object(site: str, code: str, state: State, principal: Reader) -> ObjectDetailPublic:
    """One object: summary, attributes, footprint (GeoJSON geometry in the site CRS) and the
    number of its children.

    Raises
    ------
    NotFoundError
        If the site or the object does not exist, or is outside a pilot's scope (404).
    """
    info = state.store.site(site)
    if not principal.sees(code, site):
        raise NotFoundError(f"no object {code!r} in site {site!r}")
    obj = state.store.get(site, code)
    if principal.scoped:
        children = len(scoped_view(state, principal, site).children.get(code, ()))
    else:
        children = len(state.store.children(site, code))
    return ObjectDetailPublic(
        **obj.summary(),
        site=info.name,
        crs=info.crs,
        attributes=obj.attributes,
        footprint=dict(mapping(obj.footprint)) if obj.footprint is not None else None,
        children=children,
    )


@router.get("/tree", response_model=TreePublic)
def read_tree(
    site: str,
    state: State,
    principal: Reader,
    root: Annotated[
        str | None,
        Query(description="code of the root; default: the top of the tree the caller may see"),
    ] = None,
    depth: Annotated[int, Query(ge=1, le=6, description="child levels to include")] = 2,
) -> TreePublic:
    """The containment tree (district -> street -> community -> grid cell -> unit -> part)
    from ``root`` down ``depth`` levels, breadth first, at most 5000 nodes.

    Raises
    ------
    NotFoundError
        If the site or root does not exist, or is outside a pilot's scope (404).
    """
    view = scoped_view(state, principal, site)
    if root is not None and root not in view.by_code:
        raise NotFoundError(f"no object {root!r} in site {site!r}")
    roots = [root] if root is not None else view.roots

    def node(code: str) -> dict[str, Any]:
        obj = view.by_code[code]
        return {
            "code": code,
            "kind": obj.kind,
            "name": obj.name,
            "child_count": len(view.children.get(code, ())),
            "children": [],
        }

    top = [node(code) for code in roots[:TREE_NODE_CAP]]
    count, truncated = len(top), len(roots) > TREE_NODE_CAP
    queue = deque((item, 0) for item in top)
    while queue and not truncated:
        parent, level = queue.popleft()
        if level >= depth:
            continue
        for code in view.children.get(parent["code"], ()):
            if count >= TREE_NODE_CAP:
                truncated = True
                break
            child = node(code)
            parent["children"].append(child)
            queue.append((child, level + 1))
            count += 1
    return TreePublic(
        site=view.site.name,
        depth=depth,
        nodes=count,
        truncated=truncated,
        roots=[TreeNodePublic.model_validate(item) for item in top],
    )


@router.get("/objects", response_model=ObjectListPublic, responses=responses(400))
def query_objects(
    site: str,
    state: State,
    principal: Reader,
    bbox: Annotated[
        str | None,
        Query(description="minx,miny,maxx,maxy (metres, site CRS): objects whose box overlaps"),
    ] = None,
    point: Annotated[
        str | None, Query(description="x,y: objects whose footprint contains the point")
    ] = None,
    nearest: Annotated[
        str | None, Query(description="x,y: the `count` objects nearest the point, nearest first")
    ] = None,
    count: Annotated[
        int | None, Query(ge=1, le=MAX_LIMIT, description="how many for `nearest` (default 10)")
    ] = None,
    within: Annotated[
        str | None,
        Query(
            description="WKT polygon of at most 10,000 "
            "characters: objects whose footprint lies inside"
        ),
    ] = None,
    prefix: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=32,
            description="code prefix: a grid cell's or community's objects",
        ),
    ] = None,
    kind: Annotated[list[str] | None, Query(description="only these kinds (repeatable)")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 1000,
) -> ObjectListPublic:
    """Objects selected by exactly one of ``bbox``, ``point``, ``nearest``, ``within`` or
    ``prefix``, optionally of some kinds. Grid and admin objects are left out of spatial
    queries unless asked for by ``kind``.

    Raises
    ------
    QueryError
        If not exactly one selector is given, or a parameter is malformed (400).
    NotFoundError
        If the site does not exist (404).
    """
    given = {"bbox": bbox, "point": point, "nearest": nearest, "within": within, "prefix": prefix}
    chosen = [name for name in _SELECTORS if given[name] is not None]
    if len(chosen) != 1:
        names = ", ".join(chosen) if chosen else "none"
        raise QueryError(
            chosen[1] if len(chosen) > 1 else "selector",
            f"give exactly one of {', '.join(_SELECTORS)} (got {names})",
        )
    selector = chosen[0]
    if count is not None and selector != "nearest":
        raise QueryError("count", "only applies to nearest")
    kinds = set(kind) if kind else None
    index = scoped_view(state, principal, site).index
    distances: list[float | None]
    if selector == "nearest":
        x, y = parse_point("nearest", str(nearest))
        pairs = index.nearest(x, y, count or 10, kinds=kinds)
        found = [obj for obj, _ in pairs]
        distances = [d for _, d in pairs]
    else:
        if selector == "bbox":
            found = index.in_bbox(*parse_bbox("bbox", str(bbox)), kinds=kinds)
        elif selector == "point":
            found = index.at_point(*parse_point("point", str(point)), kinds=kinds)
        elif selector == "within":
            found = index.within(parse_polygon("within", str(within)), kinds=kinds)
        else:
            found = index.with_prefix(str(prefix))
            if kinds is not None:
                found = [o for o in found if o.kind in kinds]
        found.sort(key=lambda o: o.code)
        distances = [None] * len(found)
    return ObjectListPublic(
        count=min(len(found), limit),
        objects=[_public(o, d) for o, d in zip(found[:limit], distances[:limit], strict=True)],
        truncated=len(found) > limit,
    )


def _public(obj: CimObject, distance_m: float | None) -> ObjectPublic:
    return ObjectPublic(**obj.summary(), distance_m=distance_m)
