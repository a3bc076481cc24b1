"""Response shapes of the read API (``XPublic`` models; the OpenAPI schema is built from
these)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

Box = tuple[float, float, float, float, float, float]


class HealthPublic(BaseModel):
    """Liveness and the store behind the service."""

    status: str
    store: str = Field(description="`sqlite` or `postgresql`")
    sites: int


class SourcePublic(BaseModel):
    """A source file imported into a site."""

    key: str
    path: str
    format: str
    sha256: str
    objects: int
    imported: str


class SitePublic(BaseModel):
    """A site in the sites list."""

    name: str
    crs: str
    bbox: Box | None = Field(description="minx, miny, minz, maxx, maxy, maxz; metres in `crs`")
    version: int
    objects: dict[str, int] = Field(description="source objects per kind")


class SiteDetailPublic(SitePublic):
    """One site with its grid, sources and frames."""

    grid: dict[str, int] = Field(description="grid and admin objects per kind")
    sources: list[SourcePublic]
    division: str
    cell_m: float
    origin: tuple[float, float]
    enu_origin: tuple[float, float, float]


class ObjectPublic(BaseModel):
    """An object without its geometry."""

    code: str
    kind: str
    name: str
    parent: str | None
    source: str | None
    source_id: str | None
    bbox: Box | None
    distance_m: float | None = Field(
        default=None, description="distance from the query point (nearest queries only)"
    )


class ObjectDetailPublic(ObjectPublic):
    """An object with attributes and footprint."""

    site: str
    crs: str
    attributes: dict[str, Any]
    footprint: dict[str, Any] | None = Field(description="GeoJSON geometry in `crs`")
    children: int = Field(description="number of (visible) children")


class ObjectListPublic(BaseModel):
    """The result of an object query."""

    count: int
    objects: list[ObjectPublic]
    truncated: bool


class TreeNodePublic(BaseModel):
    """A node of the containment tree."""

    code: str
    kind: str
    name: str
    child_count: int
    children: list[TreeNodePublic]


class TreePublic(BaseModel):
    """A part of the containment tree."""

    site: str
    depth: int
    nodes: int
    truncated: bool
    roots: list[TreeNodePublic]
