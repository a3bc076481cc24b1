"""SensorThings API 1.1 requests against the live store: read paths with query options,
create with deep insert, update and delete.

Paths are what follows the service root: ``Things``, ``Things(1)``,
``Things(1)/Datastreams``, ``Observations(7)/Datastream/Thing``, ``Things(1)/name``.
A pilot's scope (CIM code prefixes) limits Things, Datastreams, their Observations and the
Things' Locations; other entity sets are shared vocabulary.
Observations are not written here: they go through the ingest (``observation_sink``), which
checks, stores idempotently, moves the latest state and runs the rules.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import orjson

from cim.errors import NotFoundError
from twin.db import LiveDb
from twin.errors import LimitError, RequestError
from twin.sta.entities import ENTITY_SETS, OBSERVATION_NUMERIC, EntitySet, Field, Relation
from twin.sta.filter import FilterCompiler, Scope
from twin.sta.limits import ENV, MAX_INT, Cost, StaLimits
from twin.sta.options import Options, parse_options
from twin.times import format_time, parse_time

_SEGMENT = re.compile(r"^([A-Za-z]+)(?:\((\d+)\))?$")

#: Receives Observation bodies (each with ``Datastream: {"@iot.id": n}``); returns the new
#: ids, raising ``RequestError`` for a rejected observation.
ObservationSink = Callable[[list[dict[str, Any]], str], list[int]]


@dataclass
class Target:
    """Where a path leads: an entity set, the rows it selects, and what is returned."""

    entities: EntitySet
    where: str
    params: list[Any]
    single: bool
    property: str | None = None
    raw_value: bool = False
    parent: tuple[str, int] | None = None


class SensorThings:
    """The SensorThings service over a :class:`~twin.db.LiveDb`.

    Parameters
    ----------
    db : the live store
    observation_sink : where created Observations go (the ingest)
    limits : the bounds of one request (``$filter``, ``$top``, ``$expand``, answer size,
        statement time)
    """

    def __init__(
        self,
        db: LiveDb,
        observation_sink: ObservationSink | None = None,
        limits: StaLimits | None = None,
    ) -> None:
        self.db = db
        self.limits = limits if limits is not None else StaLimits()
        self.filters = FilterCompiler(db.postgres, self.limits)
        self.observation_sink = observation_sink
        #: called after an update or delete (the ingest drops its cached datastreams)
        self.on_change: Callable[[], None] | None = None

    # -- paths --------------------------------------------------------------------------------
    def resolve(self, path: str) -> Target:
        """The rows a resource path selects.

        Raises
        ------
        RequestError
            If the path is malformed or names an unknown entity set or property.
        """
        segments = [s for s in path.strip("/").split("/") if s]
        if not segments:
            raise RequestError("empty resource path")
        match = _SEGMENT.match(segments[0])
        if match is None or match.group(1) not in ENTITY_SETS:
            raise RequestError(f"unknown entity set {segments[0][:40]!r}")
        entities = ENTITY_SETS[match.group(1)]
        target = Target(entities, "1 = 1", [], False)
        if match.group(2) is not None:
            target = Target(entities, "id = ?", [_ident(entities, match.group(2))], True)
        for i, segment in enumerate(segments[1:], start=1):
            if segment == "$value" and target.property is not None and i == len(segments) - 1:
                target.raw_value = True
                continue
            match = _SEGMENT.match(segment)
            name = match.group(1) if match else segment
            if not target.single or target.property is not None:
                raise RequestError(f"{segment!r} must follow a single entity")
            relation = target.entities.relation(name)
            if relation is None:
                field = target.entities.field(name)
                if field is None and name not in ("id", "@iot.id"):
                    raise RequestError(f"{target.entities.singular} has no property {name!r}")
                target.property = name
                continue
            assert match is not None
            parent = self._parent_id(target)
            step = relation.step(target.entities.table, target.where)
            target = Target(
                ENTITY_SETS[relation.target],
                step,
                list(target.params),
                not relation.many,
                parent=(relation.name, parent) if parent is not None else None,
            )
            if match.group(2) is not None:
                target.where = f"({target.where}) AND id = ?"
                target.params.append(_ident(target.entities, match.group(2)))
                target.single = True
        return target

    @staticmethod
    def _parent_id(target: Target) -> int | None:
        if target.where == "id = ?":
            return int(target.params[0])
        return None

    # -- scope --------------------------------------------------------------------------------
    @staticmethod
    def _prefix_sql(scopes: Sequence[str]) -> tuple[str, list[str]]:
        if not scopes:
            return "1 = 0", []
        likes = " OR ".join("code LIKE ? ESCAPE '\\'" for _ in scopes)
        escaped = [s.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") for s in scopes]
        return f"({likes})", [e + "%" for e in escaped]

    def scope_sql(self, entities: EntitySet, scopes: Sequence[str] | None) -> tuple[str, list[Any]]:
        """``WHERE`` fragment limiting ``entities`` to a pilot's scopes (``None``: all)."""
        if scopes is None:
            return "1 = 1", []
        prefix, params = self._prefix_sql(scopes)
        if entities.name in ("Things", "Datastreams"):
            return prefix, params
        if entities.name == "Observations":
            return f"datastream_id IN (SELECT id FROM sta_datastreams WHERE {prefix})", params
        if entities.name == "Locations":
            return (
                "id IN (SELECT location_id FROM sta_thing_locations WHERE thing_id IN "
                f"(SELECT id FROM sta_things WHERE {prefix}))",
                params,
            )
        # the sensors, properties and features of the scope's datastreams, nothing else
        if entities.name == "Sensors":
            return f"id IN (SELECT sensor_id FROM sta_datastreams WHERE {prefix})", params
        if entities.name == "ObservedProperties":
            return (
                f"id IN (SELECT observed_property_id FROM sta_datastreams WHERE {prefix})",
                params,
            )
        if entities.name == "FeaturesOfInterest":
            return (
                "id IN (SELECT feature_id FROM sta_observations WHERE datastream_id IN "
                f"(SELECT id FROM sta_datastreams WHERE {prefix}))",
                params,
            )
        return "1 = 0", []  # an entity set not named here is not a pilot's

    # -- reading ------------------------------------------------------------------------------
    def read(
        self,
        path: str,
        params: Mapping[str, str],
        base_url: str,
        scopes: Sequence[str] | None = None,
    ) -> Any:
        """The JSON of a path: a collection envelope, an entity, ``{"name": value}`` or a raw
        value (``$value``).

        Parameters
        ----------
        path : resource path after the service root
        params : query parameters (``$filter``...)
        base_url : the service root URL, for self and next links
        scopes : a pilot's code prefixes, or ``None`` to see everything

        Raises
        ------
        RequestError
            If the path or an option is malformed.
        NotFoundError
            If a single entity does not exist (or is outside the scope).
        """
        try:
            return self._read(path, params, base_url, scopes)
        except Exception as exc:
            if _too_complex(exc):
                # a filter within the depth limit the store's SQL parser still cannot take
                # (deep navigation, a deployment's large TWIN_STA_FILTER_MAX_DEPTH)
                raise LimitError(
                    ENV["filter_max_depth"],
                    self.limits.filter_max_depth,
                    "$filter nests deeper than the store can evaluate: flatten it",
                ) from None
            # a filter that compares across types (text with a number...) is refused by
            # PostgreSQL's type checks: the request is at fault, not the service
            names = {k.__name__ for k in type(exc).__mro__}
            if names & {"DataError", "ProgrammingError"}:
                raise RequestError(f"$filter: the store cannot evaluate it ({exc})") from None
            raise

    def _read(
        self,
        path: str,
        params: Mapping[str, str],
        base_url: str,
        scopes: Sequence[str] | None,
    ) -> Any:
        target = self.resolve(path)
        options = parse_options(params, self.limits)
        base = base_url.rstrip("/")
        cost = Cost(self.limits)
        if target.single:
            rows = self._select(target, Options(select=options.select), scopes, cost)
            if not rows:
                raise NotFoundError(f"no {target.entities.singular} at {path!r}")
            cost.take(rows[:1])
            entity = self._render(target.entities, rows[0], base, options, scopes, cost)
            if target.property is not None:
                key = "@iot.id" if target.property in ("id", "@iot.id") else target.property
                value = entity.get(key)
                return value if target.raw_value else {target.property: value}
            return entity
        rows = self._select(target, options, scopes, cost)
        out: dict[str, Any] = {}
        if options.count:
            out["@iot.count"] = self._count(target, options, scopes, cost)
        more = len(rows) > options.top
        rows = rows[: options.top]
        if more:
            out["@iot.nextLink"] = self._next_link(base, path, params, options)
        cost.take(rows)
        out["value"] = [self._render(target.entities, r, base, options, scopes, cost) for r in rows]
        return out

    def _where(
        self, target: Target, options: Options, scopes: Sequence[str] | None
    ) -> tuple[str, list[Any]]:
        where, params = f"({target.where})", list(target.params)
        scope, scope_params = self.scope_sql(target.entities, scopes)
        where += f" AND {scope}"
        params += scope_params
        if options.filter:
            text, filter_params = self.filters.compile(
                target.entities, options.filter, scope=_scoping(self, scopes)
            )
            where += f" AND {text}"
            params += filter_params
        return where, params

    def _columns(self, entities: EntitySet) -> list[str]:
        columns = ["id", *(f.column for f in entities.fields)]
        if entities.name == "Observations":
            columns += ["result_json", "datastream_id", "feature_id"]
        if entities.name in ("Things", "Datastreams"):
            columns += ["site", "code"]
        if entities.name == "Datastreams":
            columns += ["thing_id", "sensor_id", "observed_property_id"]
        return columns

    def _order(self, entities: EntitySet, options: Options) -> str:
        # a column sorts once, at its first mention: a repeated key changes nothing, and a
        # list of thousands would pass SQLite's bound on ORDER BY terms
        keys: dict[str, str] = {}
        for name, descending in options.orderby:
            if name in ("id", "@iot.id"):
                column = "id"
            else:
                field = entities.field(name)
                if field is None or field.kind == "json":
                    raise RequestError(f"$orderby: {entities.singular} cannot sort by {name!r}")
                column = field.column
            keys.setdefault(column, f"{column} {'DESC' if descending else 'ASC'}")
        keys.setdefault("id", "id ASC")
        return ", ".join(keys.values())

    def _select(
        self, target: Target, options: Options, scopes: Sequence[str] | None, cost: Cost
    ) -> list[dict[str, Any]]:
        where, params = self._where(target, options, scopes)
        columns = self._columns(target.entities)
        sql = (
            f"SELECT {', '.join(columns)} FROM {target.entities.table} WHERE {where} "
            f"ORDER BY {self._order(target.entities, options)} LIMIT ? OFFSET ?"
        )
        rows = self.db.read(sql, [*params, options.top + 1, options.skip], cost.deadline)
        return [dict(zip(columns, row, strict=True)) for row in rows]

    def _count(
        self, target: Target, options: Options, scopes: Sequence[str] | None, cost: Cost
    ) -> int:
        where, params = self._where(target, options, scopes)
        sql = f"SELECT COUNT(*) FROM {target.entities.table} WHERE {where}"
        rows = self.db.read(sql, params, cost.deadline)
        return int(rows[0][0])

    @staticmethod
    def _next_link(base: str, path: str, params: Mapping[str, str], options: Options) -> str:
        query = {k: v for k, v in params.items() if k not in ("$top", "$skip")}
        query["$top"] = str(options.top)
        query["$skip"] = str(options.skip + options.top)
        text = "&".join(f"{k}={quote(v, safe='')}" for k, v in query.items())
        return f"{base}/{path.strip('/')}?{text}"

    def _render(
        self,
        entities: EntitySet,
        row: dict[str, Any],
        base: str,
        options: Options,
        scopes: Sequence[str] | None,
        cost: Cost,
    ) -> dict[str, Any]:
        ident = int(row["id"])
        self_link = f"{base}/{entities.name}({ident})"
        out: dict[str, Any] = {"@iot.id": ident, "@iot.selfLink": self_link}
        for f in entities.fields:
            out[f.name] = _decode(f, row)
        if entities.name in ("Things", "Datastreams") and row.get("code") is not None:
            props = dict(out.get("properties") or {})
            props.setdefault("cimCode", row["code"])
            if row.get("site") is not None:
                props.setdefault("cimSite", row["site"])
            out["properties"] = props
        if options.select:
            keep = set(options.select) | {"@iot.id", "@iot.selfLink"}
            out = {k: v for k, v in out.items() if k in keep or (k == "id" and "id" in keep)}
            if "id" in options.select:
                out["@iot.id"] = ident
        for relation in entities.relations:
            out[f"{relation.name}@iot.navigationLink"] = f"{self_link}/{relation.name}"
        for name, nested in options.expand.items():
            found = entities.relation(name)
            if found is None:
                raise RequestError(f"$expand: {entities.singular} has no relation {name!r}")
            out[name] = self._expand(entities, found, ident, nested, base, scopes, cost)
        return out

    def _expand(
        self,
        entities: EntitySet,
        relation: Relation,
        ident: int,
        nested: Options,
        base: str,
        scopes: Sequence[str] | None,
        cost: Cost,
    ) -> Any:
        target_set = ENTITY_SETS[relation.target]
        target = Target(target_set, relation.step(entities.table, "id = ?"), [ident], False)
        rows = self._select(target, nested, scopes, cost)
        if not relation.many:
            if not rows:
                return None
            cost.take(rows[:1])
            return self._render(target_set, rows[0], base, nested, scopes, cost)
        rows = rows[: nested.top]
        cost.take(rows)
        return [self._render(target_set, r, base, nested, scopes, cost) for r in rows]

    # -- writing ------------------------------------------------------------------------------
    def create(self, path: str, body: Any, scopes: Sequence[str] | None = None) -> int:
        """Create an entity (with deep insert) at a collection path; returns its id.

        ``POST Things(1)/Datastreams`` links the new Datastream to Thing 1, and likewise for
        ``Things(1)/Locations`` and ``Datastreams(1)/Observations``.

        Raises
        ------
        RequestError
            If the body is malformed or misses a mandatory property.
        NotFoundError
            If a linked entity or CIM object does not exist.
        """
        target = self.resolve(path)
        if target.single or target.property is not None:
            raise RequestError("create with POST to a collection")
        if not isinstance(body, dict):
            raise RequestError(f"the body of a new {target.entities.singular} must be an object")
        body = dict(body)
        if target.parent is not None:
            relation_name, parent_id = target.parent
            back = {
                "Datastreams": "Thing",
                "Observations": "Datastream",
                "Locations": "Things",
            }.get(target.entities.name)
            if back is None:
                raise RequestError(f"cannot create {target.entities.name} under {relation_name}")
            if back == "Things":
                body["Things"] = [{"@iot.id": parent_id}]
            else:
                body[back] = {"@iot.id": parent_id}
        if target.entities.name == "Observations":
            return self._create_observations([body])[0]
        self._check_cim_links(target.entities, body)
        with self.db.transaction() as cur:
            return self._create(cur, target.entities, body)

    def _create_observations(self, bodies: list[dict[str, Any]]) -> list[int]:
        if self.observation_sink is None:
            raise RequestError("this service does not accept Observations")
        return self.observation_sink(bodies, "http")

    def _check_cim_links(self, entities: EntitySet, body: dict[str, Any]) -> None:
        """Refuse a link to a CIM object that does not exist (before any write)."""
        props = body.get("properties")
        if isinstance(props, dict) and props.get("cimCode") is not None:
            site, code = props.get("cimSite"), props["cimCode"]
            if not isinstance(code, str) or (site is not None and not isinstance(site, str)):
                raise RequestError("properties.cimCode and cimSite must be strings")
            if site is not None:
                self.db.store.get(site, code)
        for relation in entities.relations:
            nested = body.get(relation.name)
            items = nested if isinstance(nested, list) else [nested]
            for item in items:
                if isinstance(item, dict) and "@iot.id" not in item:
                    self._check_cim_links(ENTITY_SETS[relation.target], item)

    def _exists(self, cur: Any, entities: EntitySet, ident: Any) -> int:
        if not isinstance(ident, int) or isinstance(ident, bool):
            raise RequestError(f"@iot.id of a {entities.singular} must be an integer")
        if not -MAX_INT - 1 <= ident <= MAX_INT:
            raise NotFoundError(
                f"no {entities.singular} with @iot.id {ident}: ids end at {MAX_INT}"
            )
        cur.execute(self.db.sql(f"SELECT id FROM {entities.table} WHERE id = ?"), (ident,))
        if cur.fetchone() is None:
            raise NotFoundError(f"no {entities.singular} with @iot.id {ident}")
        return ident

    def _create(self, cur: Any, entities: EntitySet, body: Any) -> int:
        if not isinstance(body, dict):
            raise RequestError(f"a {entities.singular} must be a JSON object")
        if "@iot.id" in body and len(body) == 1:
            return self._exists(cur, entities, body["@iot.id"])
        if entities.name == "Observations":
            raise RequestError("create Observations with POST Observations or CreateObservations")
        allowed = {f.name for f in entities.fields} | {r.name for r in entities.relations}
        unknown = sorted(set(body) - allowed - {"@iot.id"})
        if unknown:
            raise RequestError(f"{entities.singular} has no property {unknown[0]!r}")
        columns: dict[str, Any] = {}
        for f in entities.fields:
            value = body.get(f.name)
            if value is None:
                if f.required:
                    raise RequestError(f"{entities.singular}.{f.name} is mandatory")
                value = {} if f.kind == "json" else None
            columns[f.column] = _encode(entities, f, value)
        for relation in entities.relations:
            if relation.source_fk is None:
                continue
            nested = body.get(relation.name)
            if nested is None:
                raise RequestError(f"{entities.singular}.{relation.name} is mandatory")
            columns[relation.source_fk] = self._create(cur, ENTITY_SETS[relation.target], nested)
        if entities.name in ("Things", "Datastreams"):
            self._link_columns(cur, entities, body, columns)
        names = list(columns)
        ident = self.db.insert(
            cur,
            f"INSERT INTO {entities.table} ({', '.join(names)}) "
            f"VALUES ({', '.join('?' for _ in names)})",
            [columns[n] for n in names],
        )
        for relation in entities.relations:
            nested = body.get(relation.name)
            if relation.source_fk is not None or nested is None:
                continue
            if not isinstance(nested, list):
                raise RequestError(f"{entities.singular}.{relation.name} must be a list")
            target = ENTITY_SETS[relation.target]
            for item in nested:
                if relation.target_fk is not None:
                    if not isinstance(item, dict):
                        raise RequestError(f"{relation.name} items must be objects")
                    if "@iot.id" in item and len(item) == 1:
                        raise RequestError(f"{relation.name} can only be created here, not linked")
                    self._create(cur, target, {**item, _back(relation): {"@iot.id": ident}})
                else:
                    assert relation.link is not None
                    other = self._create(cur, target, item)
                    table, source_col, target_col = relation.link
                    cur.execute(
                        self.db.sql(
                            f"INSERT INTO {table} ({source_col}, {target_col}) VALUES (?, ?) "
                            "ON CONFLICT DO NOTHING"
                        ),
                        (ident, other),
                    )
        return ident

    def _link_columns(
        self, cur: Any, entities: EntitySet, body: dict[str, Any], columns: dict[str, Any]
    ) -> None:
        props = body.get("properties") or {}
        site, code = props.get("cimSite"), props.get("cimCode")
        if entities.name == "Datastreams":
            if code is None:
                cur.execute(
                    self.db.sql("SELECT site, code FROM sta_things WHERE id = ?"),
                    (columns["thing_id"],),
                )
                row = cur.fetchone()
                site, code = (row[0], row[1]) if row else (None, None)
            interval = props.get("intervalS")
            if interval is not None and (
                not isinstance(interval, int | float) or isinstance(interval, bool) or interval <= 0
            ):
                raise RequestError("Datastream properties.intervalS must be a positive number")
            columns["interval_s"] = float(interval) if interval is not None else None
        columns["site"], columns["code"] = site, code

    def update(self, path: str, body: Any) -> None:
        """Patch the properties of one entity (relations of a Datastream may be relinked).

        Raises
        ------
        RequestError
            If the path is not one entity or the body is malformed.
        NotFoundError
            If the entity does not exist.
        """
        target = self.resolve(path)
        if not target.single or target.property is not None:
            raise RequestError("PATCH needs one entity")
        if not isinstance(body, dict):
            raise RequestError("a PATCH body must be a JSON object")
        entities = target.entities
        if entities.name == "Observations" and "result" in body:
            raise RequestError("an Observation's result is not patched: post a new Observation")
        sets: dict[str, Any] = {}
        with self.db.transaction() as cur:
            for key, value in body.items():
                field = entities.field(key)
                relation = entities.relation(key)
                if field is not None:
                    if value is None and field.required:
                        raise RequestError(f"{entities.singular}.{key} is mandatory")
                    sets[field.column] = _encode(entities, field, value)
                    if key == "properties" and entities.name in ("Things", "Datastreams"):
                        if not isinstance(value, dict):
                            raise RequestError("properties must be an object")
                        sets["site"] = value.get("cimSite")
                        sets["code"] = value.get("cimCode")
                elif relation is not None and relation.source_fk is not None:
                    target_set = ENTITY_SETS[relation.target]
                    sets[relation.source_fk] = self._exists(
                        cur, target_set, (value or {}).get("@iot.id")
                    )
                else:
                    raise RequestError(f"{entities.singular} has no patchable property {key!r}")
            if not sets:
                return
            assignments = ", ".join(f"{column} = ?" for column in sets)
            cur.execute(
                self.db.sql(f"UPDATE {entities.table} SET {assignments} WHERE {target.where}"),
                (*sets.values(), *target.params),
            )
            if cur.rowcount == 0:
                raise NotFoundError(f"no {entities.singular} at {path!r}")
        if self.on_change is not None:
            self.on_change()

    def delete(self, path: str) -> None:
        """Delete one entity, and what cannot exist without it (a Thing's Datastreams, a
        Datastream's Observations).

        Raises
        ------
        NotFoundError
            If the entity does not exist.
        """
        target = self.resolve(path)
        if not target.single or target.property is not None:
            raise RequestError("DELETE needs one entity")
        with self.db.transaction() as cur:
            cur.execute(
                self.db.sql(f"SELECT id FROM {target.entities.table} WHERE {target.where}"),
                tuple(target.params),
            )
            row = cur.fetchone()
            if row is None:
                raise NotFoundError(f"no {target.entities.singular} at {path!r}")
            ident = int(row[0])
            for statement in _CASCADE[target.entities.name]:
                cur.execute(self.db.sql(statement), (ident,))
        if self.on_change is not None:
            self.on_change()


_CASCADE: dict[str, tuple[str, ...]] = {
    "Things": (
        "DELETE FROM sta_observations WHERE datastream_id IN "
        "(SELECT id FROM sta_datastreams WHERE thing_id = ?)",
        "DELETE FROM live_latest WHERE datastream_id IN "
        "(SELECT id FROM sta_datastreams WHERE thing_id = ?)",
        "DELETE FROM sta_datastreams WHERE thing_id = ?",
        "DELETE FROM sta_thing_locations WHERE thing_id = ?",
        "DELETE FROM sta_things WHERE id = ?",
    ),
    "Datastreams": (
        "DELETE FROM sta_observations WHERE datastream_id = ?",
        "DELETE FROM live_latest WHERE datastream_id = ?",
        "DELETE FROM sta_datastreams WHERE id = ?",
    ),
    "Locations": (
        "DELETE FROM sta_thing_locations WHERE location_id = ?",
        "DELETE FROM sta_locations WHERE id = ?",
    ),
    "Sensors": (
        "DELETE FROM sta_observations WHERE datastream_id IN "
        "(SELECT id FROM sta_datastreams WHERE sensor_id = ?)",
        "DELETE FROM sta_datastreams WHERE sensor_id = ?",
        "DELETE FROM sta_sensors WHERE id = ?",
    ),
    "ObservedProperties": (
        "DELETE FROM sta_observations WHERE datastream_id IN "
        "(SELECT id FROM sta_datastreams WHERE observed_property_id = ?)",
        "DELETE FROM sta_datastreams WHERE observed_property_id = ?",
        "DELETE FROM sta_observed_properties WHERE id = ?",
    ),
    "Observations": ("DELETE FROM sta_observations WHERE id = ?",),
    "FeaturesOfInterest": (
        "UPDATE sta_observations SET feature_id = NULL WHERE feature_id = ?",
        "DELETE FROM sta_features WHERE id = ?",
    ),
}


def _too_complex(exc: Exception) -> bool:
    """Whether the store refused a statement as too deep or too large for its parser
    (SQLite's parser stack and expression depth, PostgreSQL's stack depth)."""
    if getattr(exc, "sqlstate", None) in ("54001", "54000"):
        return True
    text = str(exc)
    return type(exc).__name__ == "OperationalError" and (
        "parser stack overflow" in text or "Expression tree is too large" in text
    )


def _ident(entities: EntitySet, digits: str) -> int:
    """The id in a path segment (``Things(12)``); one beyond the stores' integers names no
    entity."""
    value = int(digits)
    if value > MAX_INT:
        raise NotFoundError(f"no {entities.singular} with id {value}: ids end at {MAX_INT}")
    return value


def _back(relation: Relation) -> str:
    """The to-one relation pointing back along a to-many relation."""
    return {"thing_id": "Thing", "sensor_id": "Sensor", "observed_property_id": "ObservedProperty"}[
        relation.target_fk or ""
    ]


def _encode(entities: EntitySet, field: Field, value: Any) -> Any:
    if field.kind == "json":
        if field.name == "properties" and not isinstance(value, dict):
            raise RequestError(f"{entities.singular}.properties must be an object")
        try:
            return orjson.dumps(value).decode()
        except TypeError as exc:  # an integer beyond 64 bits
            raise RequestError(f"{entities.singular}.{field.name}: {exc}") from None
    if field.kind == "time":
        if value is None:
            return None
        try:
            return parse_time(value)
        except ValueError as exc:
            raise RequestError(f"{entities.singular}.{field.name}: {exc}") from None
    if field.name == "observationType" and not isinstance(value, str):
        raise RequestError("Datastream.observationType must be a URI string")
    if field.kind == "text" and not isinstance(value, str):
        raise RequestError(f"{entities.singular}.{field.name} must be a string")
    return value


def _decode(field: Field, row: dict[str, Any]) -> Any:
    value = row.get(field.column)
    if field.kind == "json":
        return orjson.loads(value) if value is not None else None
    if field.kind == "time":
        return format_time(value)
    if field.kind == "result":
        if row.get("result_json") is not None:
            return orjson.loads(row["result_json"])
        return float(value) if value is not None else None
    return value


__all__ = ["OBSERVATION_NUMERIC", "SensorThings", "Target"]


def _scoping(service: SensorThings, scopes: Sequence[str] | None) -> Scope | None:
    """The scope a ``$filter``'s navigation obeys (``None``: everything)."""
    if scopes is None:
        return None
    return lambda entities: service.scope_sql(entities, scopes)
