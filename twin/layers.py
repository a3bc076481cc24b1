"""Value layers in the store: a number per object code that the viewer colours by.

A layer is a named map ``code -> value`` on a site (a drill's congestion grade per road, a
sensor's latest reading per room), with a legend, a unit and the run that left it. Layers
live in the ``layers`` table, so every API process serves the same ones and a restart keeps
them; putting or deleting one publishes ``layer`` on the :class:`~twin.feed.EventFeed`, so
every process can push it to its WebSocket subscribers.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from cim.errors import NotFoundError
from twin.db import LiveDb
from twin.feed import EventFeed

_DDL = [
    """CREATE TABLE IF NOT EXISTS layers (
        site TEXT NOT NULL, name TEXT NOT NULL, legend TEXT NOT NULL, unit TEXT NOT NULL,
        updated DOUBLE PRECISION NOT NULL, run_id TEXT, vals TEXT NOT NULL,
        PRIMARY KEY (site, name))""",
]

#: The feed topic of layer changes: ``{"site", "name", "deleted"}``.
TOPIC = "layer"


@dataclass(frozen=True)
class Layer:
    """One value per object code.

    Attributes
    ----------
    site, name : where it lives
    values : object code -> value
    legend : what the value means, for the viewer's legend
    unit : the value's unit (``""`` for grades and counts)
    run_id : the run that left it, if any
    updated : when it was last put
    """

    site: str
    name: str
    values: Mapping[str, float]
    legend: str = ""
    unit: str = ""
    run_id: str | None = None
    updated: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))


class LayerTable:
    """The layers of every site, in the store.

    Parameters
    ----------
    url : the store
    feed : where changes are announced (``None``: not announced)
    """

    def __init__(self, url: str | Path, feed: EventFeed | None = None) -> None:
        self.db = LiveDb(url)
        self.feed = feed
        with self.db.transaction() as cur:
            for statement in _DDL:
                cur.execute(self.db.ddl(statement))

    def close(self) -> None:
        """Close the connection."""
        self.db.close()

    def put(self, layer: Layer) -> Layer:
        """Store ``layer``, replacing one of the same name, and announce it."""
        values = orjson.dumps({str(k): float(v) for k, v in layer.values.items()}).decode()
        with self.db.transaction() as cur:
            cur.execute(
                self.db.sql("DELETE FROM layers WHERE site = ? AND name = ?"),
                (layer.site, layer.name),
            )
            cur.execute(
                self.db.sql(
                    "INSERT INTO layers (site, name, legend, unit, updated, run_id, vals) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)"
                ),
                (
                    layer.site,
                    layer.name,
                    layer.legend,
                    layer.unit,
                    layer.updated.timestamp(),
                    layer.run_id,
                    values,
                ),
            )
        if self.feed is not None:
            self.feed.publish(TOPIC, {"site": layer.site, "name": layer.name, "deleted": False})
        return layer

    def get(self, site: str, name: str) -> Layer:
        """One layer.

        Raises
        ------
        NotFoundError
            If the site has no layer of that name.
        """
        rows = self.db.query(
            "SELECT site, name, legend, unit, updated, run_id, vals FROM layers "
            "WHERE site = ? AND name = ?",
            (site, name),
        )
        if not rows:
            raise NotFoundError(f"site {site!r} has no layer {name!r}")
        return _layer(rows[0])

    def of_site(self, site: str) -> list[Layer]:
        """The site's layers, by name."""
        rows = self.db.query(
            "SELECT site, name, legend, unit, updated, run_id, vals FROM layers "
            "WHERE site = ? ORDER BY name",
            (site,),
        )
        return [_layer(r) for r in rows]

    def delete(self, site: str, name: str) -> None:
        """Remove a layer and announce it.

        Raises
        ------
        NotFoundError
            If there is no such layer.
        """
        if not self.db.execute("DELETE FROM layers WHERE site = ? AND name = ?", (site, name)):
            raise NotFoundError(f"site {site!r} has no layer {name!r}")
        if self.feed is not None:
            self.feed.publish(TOPIC, {"site": site, "name": name, "deleted": True})

    def delete_of_run(self, run_id: str) -> list[tuple[str, str]]:
        """Remove the layers a run left; returns their ``(site, name)``."""
        rows = self.db.query("SELECT site, name FROM layers WHERE run_id = ?", (run_id,))
        for site, name in rows:
            self.delete(str(site), str(name))
        return [(str(s), str(n)) for s, n in rows]


def _layer(row: Any) -> Layer:
    site, name, legend, unit, updated, run_id, vals = row
    return Layer(
        site=str(site),
        name=str(name),
        values=orjson.loads(vals),
        legend=str(legend),
        unit=str(unit),
        run_id=run_id,
        updated=dt.datetime.fromtimestamp(float(updated), dt.UTC),
    )
