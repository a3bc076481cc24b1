"""Value layers: a number per object code that the viewer colours by, pushed live.

A layer is a named map ``code -> value`` on a site (a drill's congestion grade per road, a
test value, a sensor's latest reading per room), with a legend and a unit. Putting a layer
replaces it and pushes it at once to every WebSocket subscriber of the site; a pilot's
subscription carries only the codes inside its scope.

Layers live in the store (:mod:`twin.layers`), so every API process serves the same ones;
each process's hub pushes the changes it hears on the event feed to its own subscribers.
"""

from __future__ import annotations

import asyncio
import math
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from api.keys import Principal
from cim.errors import NotFoundError, TwinError
from twin.layers import TOPIC, Layer, LayerTable

__all__ = ["Layer", "LayerError", "LayerHub", "check_values", "public_layer"]


class LayerError(TwinError):
    """A layer's values are not finite numbers, or name objects the site lacks."""


def public_layer(layer: Layer, principal: Principal) -> dict[str, Any]:
    """The public form of a layer, with only the codes the principal may see."""
    values = {c: v for c, v in layer.values.items() if principal.sees(c, layer.site)}
    finite = list(values.values())
    return {
        "site": layer.site,
        "name": layer.name,
        "legend": layer.legend,
        "unit": layer.unit,
        "run": layer.run_id,
        "updated": layer.updated.isoformat(),
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
    """The layers of every site (in the store) and this process's live subscribers.

    Parameters
    ----------
    table : the layers in the store; its feed's ``layer`` events (from any process) are
        pushed to the subscribers of their site
    """

    def __init__(self, table: LayerTable) -> None:
        self.table = table
        self._subscribers: list[_Subscriber] = []
        self._lock = threading.Lock()
        if table.feed is not None:
            table.feed.listen(TOPIC, self._changed)

    def put(self, layer: Layer) -> Layer:
        """Store ``layer`` (replacing one of the same name); subscribers hear of it."""
        self.table.put(layer)
        if self.table.feed is None:
            self._changed({"site": layer.site, "name": layer.name, "deleted": False})
        return layer

    def get(self, site: str, name: str) -> Layer:
        """One layer.

        Raises
        ------
        NotFoundError
            If the site has no layer of that name.
        """
        return self.table.get(site, name)

    def of_site(self, site: str) -> list[Layer]:
        """The site's layers, by name."""
        return self.table.of_site(site)

    def delete(self, site: str, name: str) -> None:
        """Remove a layer; subscribers hear of it.

        Raises
        ------
        NotFoundError
            If there is no such layer.
        """
        self.table.delete(site, name)
        if self.table.feed is None:
            self._changed({"site": site, "name": name, "deleted": True})

    def _changed(self, event: dict[str, Any]) -> None:
        site, name = str(event.get("site")), str(event.get("name"))
        with self._lock:
            subscribers = [s for s in self._subscribers if s.site == site]
        if not subscribers:
            return
        layer = None
        if not event.get("deleted"):
            try:
                layer = self.table.get(site, name)
            except NotFoundError:
                layer = None
        for sub in subscribers:
            message: dict[str, Any] = (
                {"type": "layer", "layer": public_layer(layer, sub.principal)}
                if layer is not None
                else {"type": "deleted", "site": site, "name": name}
            )
            sub.loop.call_soon_threadsafe(sub.queue.put_nowait, message)

    def subscribe(self, site: str, principal: Principal) -> asyncio.Queue[dict[str, Any]]:
        """A queue that receives the site's current layers, then every change (call from
        the event loop that will read it)."""
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        with self._lock:
            self._subscribers.append(
                _Subscriber(site, principal, queue, asyncio.get_running_loop())
            )
        for layer in self.table.of_site(site):
            queue.put_nowait({"type": "layer", "layer": public_layer(layer, principal)})
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
