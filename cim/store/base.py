"""The store interface, written once over DB-API for both engines.

Imports are transactional: :meth:`Store.apply_import` writes a whole source or nothing.
Geometry is stored columnar (one chunk of shared arrays per source), footprints as WKB.
"""

from __future__ import annotations

import datetime as dt
import threading
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson
import shapely

from cim.errors import NotFoundError, StoreError
from cim.geometry.columns import MeshColumns
from cim.model import CimObject, SiteInfo
from cim.store.arrays import pack, unpack
from cim.terrain import TerrainGrid

SCHEMA_VERSION = "1"

_SCHEMA = [
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    """CREATE TABLE IF NOT EXISTS sites (
        name TEXT PRIMARY KEY, crs TEXT NOT NULL, division TEXT NOT NULL, cell_m REAL NOT NULL,
        origin_x REAL NOT NULL, origin_y REAL NOT NULL,
        enu_x REAL NOT NULL, enu_y REAL NOT NULL, enu_z REAL NOT NULL,
        minx REAL, miny REAL, minz REAL, maxx REAL, maxy REAL, maxz REAL,
        version INTEGER NOT NULL, updated TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS sources (
        site TEXT NOT NULL, key TEXT NOT NULL, path TEXT NOT NULL, format TEXT NOT NULL,
        sha256 TEXT NOT NULL, objects INTEGER NOT NULL, imported TEXT NOT NULL,
        PRIMARY KEY (site, key))""",
    """CREATE TABLE IF NOT EXISTS objects (
        site TEXT NOT NULL, code TEXT NOT NULL, kind TEXT NOT NULL, name TEXT NOT NULL,
        parent TEXT, source TEXT NOT NULL, source_id TEXT, attributes TEXT NOT NULL,
        minx REAL, miny REAL, minz REAL, maxx REAL, maxy REAL, maxz REAL,
        footprint BLOB, chunk INTEGER, idx INTEGER,
        PRIMARY KEY (site, code))""",
    "CREATE INDEX IF NOT EXISTS objects_parent ON objects (site, parent)",
    "CREATE INDEX IF NOT EXISTS objects_source ON objects (site, source, source_id)",
    "CREATE INDEX IF NOT EXISTS objects_kind ON objects (site, kind)",
    """CREATE TABLE IF NOT EXISTS chunks (
        id INTEGER NOT NULL, site TEXT NOT NULL, source TEXT NOT NULL,
        vertices BLOB NOT NULL, faces BLOB NOT NULL, surfaces BLOB NOT NULL,
        vertex_offsets BLOB NOT NULL, face_offsets BLOB NOT NULL,
        PRIMARY KEY (site, id))""",
    """CREATE TABLE IF NOT EXISTS rasters (
        site TEXT NOT NULL, code TEXT NOT NULL, source TEXT NOT NULL,
        origin_x REAL NOT NULL, origin_y REAL NOT NULL, cell_x REAL NOT NULL,
        cell_y REAL NOT NULL, crs TEXT, heights BLOB NOT NULL,
        PRIMARY KEY (site, code))""",
    """CREATE TABLE IF NOT EXISTS communities (
        site TEXT NOT NULL, bi INTEGER NOT NULL, bj INTEGER NOT NULL, code TEXT NOT NULL,
        PRIMARY KEY (site, bi, bj))""",
]

_OBJECT_COLUMNS = (
    "code, kind, name, parent, source, source_id, attributes, "
    "minx, miny, minz, maxx, maxy, maxz, footprint, chunk, idx"
)


@dataclass
class ImportPlan:
    """Everything one source import writes, prepared before the transaction starts.

    ``objects`` replace all objects of ``source_key`` in the site; ``admin`` objects (grid
    cells, communities...) are added where absent; ``geometry`` block ``i`` belongs to the
    object whose ``index`` is ``i``.
    """

    site: SiteInfo
    source_key: str
    source_path: str
    source_format: str
    sha256: str
    objects: list[CimObject]
    admin: list[CimObject] = field(default_factory=list)
    geometry: MeshColumns | None = None
    rasters: dict[str, TerrainGrid] = field(default_factory=dict)
    communities: dict[tuple[int, int], str] = field(default_factory=dict)


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def _bbox(values: Sequence[Any]) -> tuple[float, float, float, float, float, float] | None:
    if values[0] is None:
        return None
    a, b, c, d, e, f = (float(v) for v in values)
    return (a, b, c, d, e, f)


class Store(ABC):
    """A CIM store. Use :func:`cim.store.open_store` to get one."""

    placeholder = "?"
    blob_type = "BLOB"

    def __init__(self, url: str) -> None:
        self.url = url
        self._lock = threading.RLock()
        self._mesh_cache: OrderedDict[tuple[str, int], MeshColumns] = OrderedDict()
        self._migrate()

    # -- engine hooks -------------------------------------------------------------------------
    @abstractmethod
    def _connection(self) -> Any:
        """The engine's DB-API connection."""

    @abstractmethod
    @contextmanager
    def transaction(self) -> Iterator[Any]:
        """A cursor inside one transaction: committed on success, rolled back on error."""

    def close(self) -> None:
        """Close the connection."""
        self._connection().close()

    # -- helpers ------------------------------------------------------------------------------
    def _sql(self, text: str) -> str:
        return text if self.placeholder == "?" else text.replace("?", self.placeholder)

    def _ddl(self, text: str) -> str:
        return (
            text.replace("BLOB", self.blob_type).replace("REAL", "DOUBLE PRECISION")
            if self.blob_type != "BLOB"
            else text
        )

    def _query(self, text: str, params: Sequence[Any] = ()) -> list[Any]:
        with self._lock:
            cursor = self._connection().cursor()
            try:
                cursor.execute(self._sql(text), tuple(params))
                rows = cursor.fetchall()
            finally:
                cursor.close()
            return list(rows)

    def _migrate(self) -> None:
        try:
            with self.transaction() as cur:
                for statement in _SCHEMA:
                    cur.execute(self._ddl(statement))
                cur.execute(self._sql("SELECT value FROM meta WHERE key = ?"), ("schema",))
                row = cur.fetchone()
                if row is None:
                    cur.execute(
                        self._sql("INSERT INTO meta (key, value) VALUES (?, ?)"),
                        ("schema", SCHEMA_VERSION),
                    )
                elif row[0] != SCHEMA_VERSION:
                    raise StoreError(
                        f"{self.url}: schema version {row[0]}, this program needs {SCHEMA_VERSION}"
                    )
        except StoreError:
            raise
        except Exception as exc:
            raise StoreError(f"{self.url}: cannot prepare the store ({exc})") from exc

    # -- sites --------------------------------------------------------------------------------
    def sites(self) -> list[SiteInfo]:
        """All sites, by name."""
        rows = self._query(
            "SELECT name, crs, division, cell_m, origin_x, origin_y, enu_x, enu_y, enu_z, "
            "minx, miny, minz, maxx, maxy, maxz, version FROM sites ORDER BY name"
        )
        return [self._site(row) for row in rows]

    def find_site(self, name: str) -> SiteInfo | None:
        """The site called ``name``, or ``None``."""
        rows = self._query(
            "SELECT name, crs, division, cell_m, origin_x, origin_y, enu_x, enu_y, enu_z, "
            "minx, miny, minz, maxx, maxy, maxz, version FROM sites WHERE name = ?",
            (name,),
        )
        return self._site(rows[0]) if rows else None

    def site(self, name: str) -> SiteInfo:
        """The site called ``name``.

        Raises
        ------
        NotFoundError
            If there is no such site.
        """
        found = self.find_site(name)
        if found is None:
            raise NotFoundError(f"no site named {name!r}")
        return found

    @staticmethod
    def _site(row: Sequence[Any]) -> SiteInfo:
        return SiteInfo(
            name=row[0],
            crs=row[1],
            division=row[2],
            cell_m=float(row[3]),
            origin=(float(row[4]), float(row[5])),
            enu_origin=(float(row[6]), float(row[7]), float(row[8])),
            bbox=_bbox(row[9:15]),
            version=int(row[15]),
        )

    def sources(self, site: str) -> list[dict[str, Any]]:
        """The source files imported into a site."""
        rows = self._query(
            "SELECT key, path, format, sha256, objects, imported FROM sources WHERE site = ? "
            "ORDER BY key",
            (site,),
        )
        names = ("key", "path", "format", "sha256", "objects", "imported")
        return [dict(zip(names, row, strict=True)) for row in rows]

    # -- objects ------------------------------------------------------------------------------
    def _objects(self, where: str, params: Sequence[Any]) -> list[CimObject]:
        rows = self._query(f"SELECT {_OBJECT_COLUMNS} FROM objects WHERE {where}", params)
        if not rows:
            return []
        wkb = [row[13] for row in rows]
        present = [i for i, b in enumerate(wkb) if b is not None]
        shapes: list[Any] = [None] * len(rows)
        if present:
            geoms = shapely.from_wkb([bytes(wkb[i]) for i in present])
            for i, g in zip(present, geoms, strict=True):
                shapes[i] = g
        return [
            CimObject(
                code=row[0],
                kind=row[1],
                name=row[2],
                parent=row[3],
                source=row[4],
                source_id=row[5],
                attributes=orjson.loads(row[6]),
                bbox=_bbox(row[7:13]),
                footprint=shape,
                chunk=row[14],
                index=row[15],
            )
            for row, shape in zip(rows, shapes, strict=True)
        ]

    def get(self, site: str, code: str) -> CimObject:
        """One object by code.

        Raises
        ------
        NotFoundError
            If the site has no object with that code.
        """
        found = self._objects("site = ? AND code = ?", (site, code))
        if not found:
            self.site(site)
            raise NotFoundError(f"no object {code!r} in site {site!r}")
        return found[0]

    def children(self, site: str, code: str) -> list[CimObject]:
        """Direct children of an object, by code."""
        return sorted(self._objects("site = ? AND parent = ?", (site, code)), key=lambda o: o.code)

    def roots(self, site: str) -> list[CimObject]:
        """Objects without a parent (the district roots)."""
        return self._objects("site = ? AND parent IS NULL", (site,))

    def all_objects(self, site: str) -> list[CimObject]:
        """Every object of a site."""
        return self._objects("site = ?", (site,))

    def by_kind(self, site: str, kind: str) -> list[CimObject]:
        """Objects of one kind (``TINRelief``, ``Building``...)."""
        return self._objects("site = ? AND kind = ?", (site, kind))

    def by_prefix(self, site: str, prefix: str) -> list[CimObject]:
        """Objects whose code starts with ``prefix`` (a grid cell, a community...)."""
        escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        return sorted(
            self._objects("site = ? AND code LIKE ? ESCAPE '\\'", (site, escaped + "%")),
            key=lambda o: o.code,
        )

    def codes_of_source(self, site: str, source: str) -> dict[str, str]:
        """``source_id -> code`` of the objects a source brought into a site."""
        rows = self._query(
            "SELECT source_id, code FROM objects WHERE site = ? AND source = ?", (site, source)
        )
        return {str(sid): str(code) for sid, code in rows}

    def codes(self, site: str) -> list[str]:
        """All codes of a site."""
        return [str(r[0]) for r in self._query("SELECT code FROM objects WHERE site = ?", (site,))]

    def all_codes(self) -> list[str]:
        """Every code of every site."""
        return [str(r[0]) for r in self._query("SELECT code FROM objects")]

    def community_codes(self) -> dict[str, str]:
        """Every allocated community code of the store, with the site holding it."""
        rows = self._query("SELECT code, site FROM communities")
        return {str(code): str(site) for code, site in rows}

    def kind_counts(self, site: str) -> dict[str, int]:
        """Number of source objects per kind (grid and admin objects not counted)."""
        rows = self._query(
            "SELECT kind, COUNT(*) FROM objects WHERE site = ? AND source <> '' GROUP BY kind "
            "ORDER BY kind",
            (site,),
        )
        return {str(kind): int(count) for kind, count in rows}

    def admin_counts(self, site: str) -> dict[str, int]:
        """Number of grid and admin objects per kind."""
        rows = self._query(
            "SELECT kind, COUNT(*) FROM objects WHERE site = ? AND source = '' GROUP BY kind",
            (site,),
        )
        return {str(kind): int(count) for kind, count in rows}

    def communities(self, site: str) -> dict[tuple[int, int], str]:
        """Community codes allocated to grid blocks ``(bi, bj)``."""
        rows = self._query("SELECT bi, bj, code FROM communities WHERE site = ?", (site,))
        return {(int(a), int(b)): str(c) for a, b, c in rows}

    # -- geometry -----------------------------------------------------------------------------
    def mesh_columns(self, site: str, chunk: int) -> MeshColumns:
        """The geometry chunk ``chunk`` of a site (cached)."""
        key = (site, chunk)
        with self._lock:
            cached = self._mesh_cache.get(key)
            if cached is not None:
                self._mesh_cache.move_to_end(key)
                return cached
        rows = self._query(
            "SELECT vertices, faces, surfaces, vertex_offsets, face_offsets FROM chunks "
            "WHERE site = ? AND id = ?",
            (site, chunk),
        )
        if not rows:
            raise NotFoundError(f"no geometry chunk {chunk} in site {site!r}")
        columns = MeshColumns(*(unpack(blob) for blob in rows[0]))
        with self._lock:
            self._mesh_cache[key] = columns
            while len(self._mesh_cache) > 16:
                self._mesh_cache.popitem(last=False)
        return columns

    def raster(self, site: str, code: str) -> TerrainGrid:
        """The elevation grid of a terrain object.

        Raises
        ------
        NotFoundError
            If the object has no raster.
        """
        rows = self._query(
            "SELECT origin_x, origin_y, cell_x, cell_y, crs, heights FROM rasters "
            "WHERE site = ? AND code = ?",
            (site, code),
        )
        if not rows:
            raise NotFoundError(f"no raster for {code!r} in site {site!r}")
        ox, oy, cx, cy, crs, blob = rows[0]
        return TerrainGrid(unpack(blob), float(ox), float(oy), float(cx), float(cy), crs)

    def raster_codes(self, site: str) -> list[str]:
        """Codes of the objects that carry an elevation grid."""
        return [str(r[0]) for r in self._query("SELECT code FROM rasters WHERE site = ?", (site,))]

    # -- writing ------------------------------------------------------------------------------
    def apply_import(self, plan: ImportPlan) -> SiteInfo:
        """Write one source import atomically; returns the updated site.

        Raises
        ------
        StoreError
            If the write fails; the store is then exactly as before.
        """
        site = plan.site
        try:
            with self._lock, self.transaction() as cur:
                cur.execute(self._sql("SELECT version FROM sites WHERE name = ?"), (site.name,))
                row = cur.fetchone()
                version = (int(row[0]) if row else 0) + 1
                if row is None:
                    cur.execute(
                        self._sql(
                            "INSERT INTO sites (name, crs, division, cell_m, origin_x, "
                            "origin_y, enu_x, enu_y, enu_z, version, updated) "
                            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                        ),
                        (
                            site.name,
                            site.crs,
                            site.division,
                            site.cell_m,
                            *site.origin,
                            *site.enu_origin,
                            version,
                            _now(),
                        ),
                    )
                for statement in (
                    "DELETE FROM objects WHERE site = ? AND source = ?",
                    "DELETE FROM chunks WHERE site = ? AND source = ?",
                    "DELETE FROM rasters WHERE site = ? AND source = ?",
                    "DELETE FROM sources WHERE site = ? AND key = ?",
                ):
                    cur.execute(self._sql(statement), (site.name, plan.source_key))
                chunk = None
                if plan.geometry is not None and len(plan.geometry.faces):
                    cur.execute(
                        self._sql("SELECT COALESCE(MAX(id), 0) + 1 FROM chunks WHERE site = ?"),
                        (site.name,),
                    )
                    chunk = int(cur.fetchone()[0])
                    arrays = plan.geometry.to_arrays()
                    cur.execute(
                        self._sql(
                            "INSERT INTO chunks (id, site, source, vertices, faces, surfaces, "
                            "vertex_offsets, face_offsets) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
                        ),
                        (
                            chunk,
                            site.name,
                            plan.source_key,
                            *(
                                pack(arrays[k])
                                for k in (
                                    "vertices",
                                    "faces",
                                    "surfaces",
                                    "vertex_offsets",
                                    "face_offsets",
                                )
                            ),
                        ),
                    )
                insert = self._sql(
                    f"INSERT INTO objects (site, {_OBJECT_COLUMNS}) VALUES "
                    "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                )
                cur.executemany(insert, self._object_rows(site.name, plan.objects, chunk))
                cur.executemany(
                    self._sql(
                        f"INSERT INTO objects (site, {_OBJECT_COLUMNS}) VALUES "
                        "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                        "ON CONFLICT DO NOTHING"
                    ),
                    self._object_rows(site.name, plan.admin, None),
                )
                for code, grid in plan.rasters.items():
                    cur.execute(
                        self._sql(
                            "INSERT INTO rasters (site, code, source, origin_x, origin_y, "
                            "cell_x, cell_y, crs, heights) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
                        ),
                        (
                            site.name,
                            code,
                            plan.source_key,
                            grid.origin_x,
                            grid.origin_y,
                            grid.cell_x,
                            grid.cell_y,
                            grid.crs,
                            pack(grid.heights),
                        ),
                    )
                cur.executemany(
                    self._sql("INSERT INTO communities (site, bi, bj, code) VALUES (?, ?, ?, ?)"),
                    [(site.name, bi, bj, code) for (bi, bj), code in plan.communities.items()],
                )
                cur.execute(
                    self._sql(
                        "INSERT INTO sources (site, key, path, format, sha256, objects, "
                        "imported) VALUES (?, ?, ?, ?, ?, ?, ?)"
                    ),
                    (
                        site.name,
                        plan.source_key,
                        plan.source_path,
                        plan.source_format,
                        plan.sha256,
                        len(plan.objects),
                        _now(),
                    ),
                )
                cur.execute(
                    self._sql(
                        "SELECT MIN(minx), MIN(miny), MIN(minz), MAX(maxx), MAX(maxy), "
                        "MAX(maxz) FROM objects WHERE site = ? AND source <> ''"
                    ),
                    (site.name,),
                )
                extent = tuple(cur.fetchone())
                cur.execute(
                    self._sql(
                        "UPDATE sites SET version = ?, updated = ?, minx = ?, miny = ?, "
                        "minz = ?, maxx = ?, maxy = ?, maxz = ? WHERE name = ?"
                    ),
                    (version, _now(), *extent, site.name),
                )
        except Exception as exc:
            if isinstance(exc, StoreError):
                raise
            raise StoreError(f"{self.url}: import of {plan.source_path} failed: {exc}") from exc
        finally:
            with self._lock:
                for key in [k for k in self._mesh_cache if k[0] == site.name]:
                    del self._mesh_cache[key]
        return self.site(site.name)

    @staticmethod
    def _object_rows(
        site: str, objects: Sequence[CimObject], chunk: int | None
    ) -> list[tuple[Any, ...]]:
        if not objects:
            return []
        shapes = [o.footprint for o in objects]
        wkb = shapely.to_wkb(np.array(shapes, dtype=object))
        rows = []
        for obj, blob in zip(objects, wkb, strict=True):
            box = obj.bbox if obj.bbox is not None else (None,) * 6
            rows.append(
                (
                    site,
                    obj.code,
                    obj.kind,
                    obj.name,
                    obj.parent,
                    obj.source,
                    obj.source_id,
                    orjson.dumps(obj.attributes, option=orjson.OPT_SERIALIZE_NUMPY).decode(),
                    *box,
                    blob,
                    chunk if obj.index is not None else None,
                    obj.index,
                )
            )
        return rows

    def delete_site(self, name: str) -> None:
        """Remove a site and everything in it."""
        with self._lock, self.transaction() as cur:
            for table in ("objects", "chunks", "rasters", "communities", "sources"):
                cur.execute(self._sql(f"DELETE FROM {table} WHERE site = ?"), (name,))
            cur.execute(self._sql("DELETE FROM sites WHERE name = ?"), (name,))
