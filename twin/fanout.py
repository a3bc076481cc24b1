"""The live bus across processes: events of one process's bus reach every other's.

Each API process (``twin serve --workers N``) has its own :class:`~twin.bus.EventBus`, so
its WebSocket clients hear what that process did. :class:`BusBridge` joins the buses
through the store's event feed (:class:`~twin.feed.EventFeed`, ``twin_events``):

- an alert or case event published on the bus is written to the feed at once (topic
  :data:`EVENTS_TOPIC`), one row per event;
- observations are many (ingest runs at 20,000 obs/s), so the bridge keeps the *latest*
  per datastream and writes them every ``flush_s`` as **one** row (topic
  :data:`OBSERVATIONS_TOPIC``, ``{"obs": [[datastream, site, code, property, time µs,
  result], ...]}``) — the bus keeps only the latest observation per datastream for a
  subscriber anyway — and such rows are kept only :data:`OBSERVATIONS_KEEP_S` in the feed;
- what other processes wrote arrives through the feed's thread and is filed with
  :meth:`EventBus.deliver <twin.bus.EventBus.deliver>` (not forwarded again); the feed
  never hands a bridge its own rows, so each process hears each event exactly once.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from twin.bus import EventBus
from twin.feed import EventFeed

logger = logging.getLogger(__name__)

#: Feed topic of alert and case events.
EVENTS_TOPIC = "live.event"
#: Feed topic of batches of latest observations.
OBSERVATIONS_TOPIC = "live.observations"

#: Seconds a batch of observations stays in the feed (only the latest values matter).
OBSERVATIONS_KEEP_S = 10.0

_OBSERVATION_FIELDS = ("datastream", "site", "code", "observedProperty", "timeUs", "result")


class BusBridge:
    """Forwards a bus's events to the feed and files the feed's events on the bus.

    Parameters
    ----------
    bus : this process's bus
    feed : the store's event feed (started and closed by its owner)
    flush_s : seconds between writes of the pending observations

    Raises
    ------
    ValueError
        If ``flush_s`` is not positive.
    """

    def __init__(self, bus: EventBus, feed: EventFeed, flush_s: float = 0.05) -> None:
        if not flush_s > 0:
            raise ValueError(f"flush_s(={flush_s}) must be > 0")
        self.bus = bus
        self.feed = feed
        self.flush_s = flush_s
        self._lock = threading.Lock()
        self._pending: dict[int, list[Any]] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        bus.forward(self._forward)
        feed.listen(EVENTS_TOPIC, self._on_event)
        feed.listen(OBSERVATIONS_TOPIC, self._on_observations)
        feed.retain(OBSERVATIONS_TOPIC, OBSERVATIONS_KEEP_S)

    def start(self) -> None:
        """Write pending observations every ``flush_s`` in a thread."""
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="bus-bridge", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop the thread and write what is pending."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        try:
            self.flush()
        except Exception:  # closing: the store may already be gone
            logger.exception("writing the last observations to the event feed failed")

    def flush(self) -> int:
        """Write the pending observations as one feed row; returns how many it held.

        Raises
        ------
        StoreError, sqlite3.Error, psycopg.Error
            If the store cannot be written (the observations are then dropped: newer ones
            follow).
        """
        with self._lock:
            rows, self._pending = list(self._pending.values()), {}
        if rows:
            self.feed.publish(OBSERVATIONS_TOPIC, {"obs": rows}, local=False)
        return len(rows)

    def _forward(self, event: dict[str, Any]) -> None:
        if event["type"] == "observation":
            row = [event.get(name) for name in _OBSERVATION_FIELDS]
            with self._lock:
                self._pending[int(event["datastream"])] = row
            return
        try:
            self.feed.publish(EVENTS_TOPIC, event, local=False)
        except Exception:  # the local subscribers have it; other processes miss this one
            logger.exception("writing a %s event to the event feed failed", event["type"])

    def _on_event(self, payload: dict[str, Any]) -> None:
        self.bus.deliver(payload)

    def _on_observations(self, payload: dict[str, Any]) -> None:
        for row in payload.get("obs", ()):
            event = dict(zip(_OBSERVATION_FIELDS, row, strict=True))
            event["type"] = "observation"
            self.bus.deliver(event)

    def _run(self) -> None:
        while not self._stop.wait(self.flush_s):
            try:
                self.flush()
            except Exception:  # the store may be briefly busy; newer values follow
                logger.exception("writing observations to the event feed failed")
