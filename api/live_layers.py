"""Live state as value layers: what the viewer colours by, a moment after a reading lands.

The live twin publishes every stored observation on its event bus. This bridge subscribes
for observations (its buffer keeps the latest per datastream, so a burst costs nothing),
and every :data:`INTERVAL_S` puts, per site and observed property that changed, the layer
``live-<property>`` holding the latest reading per object. The viewer, subscribed to the
site's layers, recolours at once; pilots get only their unit's values, as with any layer.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import re
from typing import Any

from api.layers import Layer, LayerHub
from twin.bus import EventBus, Subscription

#: Seconds between layer updates (a reading reaches the viewer well within a second).
INTERVAL_S = 0.2


def layer_name(observed_property: str) -> str:
    """``live-`` and the property as a layer name (``water depth`` -> ``live-water-depth``)."""
    slug = re.sub(r"[^A-Za-z0-9_.]+", "-", observed_property.strip()).strip("-").lower()
    return f"live-{slug or 'value'}"[:64]


class LiveLayers:
    """Keeps ``live-*`` layers current from the bus."""

    def __init__(self, bus: EventBus, layers: LayerHub) -> None:
        self._bus = bus
        self._layers = layers
        self._values: dict[tuple[str, str], dict[str, float]] = {}
        self._subscription = bus.subscribe(Subscription(None, ("observation",)))
        self._task: asyncio.Task[None] | None = None

    def flush(self) -> int:
        """Apply what arrived since the last flush; returns the layers put."""
        changed: set[tuple[str, str]] = set()
        for event in self._subscription.drain():
            site, code, prop = event.get("site"), event.get("code"), event.get("observedProperty")
            value: Any = event.get("result")
            if not (isinstance(site, str) and isinstance(code, str) and isinstance(prop, str)):
                continue
            if isinstance(value, bool) or not isinstance(value, int | float):
                continue
            if not math.isfinite(value):
                continue
            self._values.setdefault((site, prop), {})[code] = float(value)
            changed.add((site, prop))
        for site, prop in changed:
            values = dict(self._values[(site, prop)])
            self._layers.put(Layer(site, layer_name(prop), values, f"live {prop}"))
        return len(changed)

    def start(self) -> None:
        """Run the flush loop on the current event loop."""

        async def loop() -> None:
            while True:
                await asyncio.sleep(INTERVAL_S)
                self.flush()

        self._task = asyncio.get_running_loop().create_task(loop())

    async def stop(self) -> None:
        """Stop the loop and leave the bus."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._bus.unsubscribe(self._subscription)
