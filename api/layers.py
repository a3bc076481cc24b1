"""Value layers: a number per object code that the viewer colours by, pushed live.

A layer is a named map ``code -> value`` on a site (a drill's congestion grade per road, a
test value, a sensor's latest reading per room), with a legend and a unit. Putting a layer
replaces it and pushes it at once to every WebSocket subscriber of the site; a pilot's
subscription carries only the codes inside its scope.

The hub is in memory, per process: layers are views of results kept elsewhere, not records.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import math
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from api.keys import Principal
from cim.errors import NotFoundError, TwinError


class LayerError(TwinError):
    """A layer's values are not finite numbers, or name objects the site lacks."""


@dataclass(frozen=True)
class Layer:
    """One value per object code.

    Attributes
    ----------
    site, name : where it lives
    values : object code -> value
    legend : what the value means, for the viewer's legend
    unit : the value's unit (``""`` for grades and counts)
    updated : when it was last put
    """

    site: str
    name: str
    values: Mapping[str, float]
    legend: str = ""
    unit: str = ""
    updated: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))

    def as_seen_by(self, principal: Principal) -> dict[str, Any]:
        """The public form, with only the codes the principal may see."""
        values = {c: v for c, v in self.values.items() if principal.sees(c)}
        finite = list(values.values())
        return {
            "site": self.site,
            "name": self.name,
            "legend": self.legend,
            "unit": self.unit,
            "updated": self.updated.isoformat(),
            "count": len(values),
            "min": min(finite) if finite else None,
            "max": max(finite) if finite else None,
            "values": values,
        }


def check_values(values: Mapping[str, float], known: set[str], site: str) -> None:
    """Refuse non-finite values and codes the site does not hold, naming the first few.

    Raises
    ------
    LayerError
        If a value is NaN or infinite, or a code is not in ``known``.
    """
    bad = [c for c, v in values.items() if not math.isfinite(v)]
    if bad:
        raise LayerError(f"values must be finite numbers; not so for {', '.join(bad[:5])}")
    unknown = sorted(set(values) - known)
    if unknown:
        more = f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
        raise LayerError(f"site {site!r} has no objects {', '.join(unknown[:5])}{more}")


@dataclass
class _Subscriber:
    site: str
    principal: Principal
    queue: asyncio.Queue[dict[str, Any]]
    loop: asyncio.AbstractEventLoop


class LayerHub:
    """The layers of every site and the live subscribers to them."""

    def __init__(self) -> None:
        self._layers: dict[tuple[str, str], Layer] = {}
        self._subscribers: list[_Subscriber] = []
        self._lock = threading.Lock()

    def put(self, layer: Layer) -> Layer:
        """Store ``layer`` (replacing one of the same name) and push it to subscribers."""
        with self._lock:
            self._layers[(layer.site, layer.name)] = layer
            subscribers = [s for s in self._subscribers if s.site == layer.site]
        for sub in subscribers:
            message = {"type": "layer", "layer": layer.as_seen_by(sub.principal)}
            sub.loop.call_soon_threadsafe(sub.queue.put_nowait, message)
        return layer

    def get(self, site: str, name: str) -> Layer:
        """One layer.

        Raises
        ------
        NotFoundError
            If the site has no layer of that name.
        """
        with self._lock:
            layer = self._layers.get((site, name))
        if layer is None:
            raise NotFoundError(f"site {site!r} has no layer {name!r}")
        return layer

    def of_site(self, site: str) -> list[Layer]:
        """The site's layers, by name."""
        with self._lock:
            return sorted((v for (s, _), v in self._layers.items() if s == site), key=_name)

    def delete(self, site: str, name: str) -> None:
        """Remove a layer and tell subscribers.

        Raises
        ------
        NotFoundError
            If there is no such layer.
        """
        self.get(site, name)
        with self._lock:
            del self._layers[(site, name)]
            subscribers = [s for s in self._subscribers if s.site == site]
        for sub in subscribers:
            message = {"type": "deleted", "site": site, "name": name}
            sub.loop.call_soon_threadsafe(sub.queue.put_nowait, message)

    def subscribe(self, site: str, principal: Principal) -> asyncio.Queue[dict[str, Any]]:
        """A queue that receives the site's current layers, then every change (call from
        the event loop that will read it)."""
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        with self._lock:
            self._subscribers.append(
                _Subscriber(site, principal, queue, asyncio.get_running_loop())
            )
            current = sorted((v for (s, _), v in self._layers.items() if s == site), key=_name)
        for layer in current:
            queue.put_nowait({"type": "layer", "layer": layer.as_seen_by(principal)})
        return queue

    def unsubscribe(self, queue: asyncio.Queue[dict[str, Any]]) -> None:
        """Stop delivering to ``queue``."""
        with self._lock:
            self._subscribers = [s for s in self._subscribers if s.queue is not queue]

    @property
    def subscriber_count(self) -> int:
        """Live subscriptions (for health and tests)."""
        with self._lock:
            return len(self._subscribers)


def _name(layer: Layer) -> str:
    return layer.name
