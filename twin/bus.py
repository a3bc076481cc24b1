"""The in-process event bus of the live twin: observations, alerts and case changes to
subscribers (the WebSocket stream), filtered by object code prefix and event kind.

A slow subscriber never slows ingest: :meth:`EventBus.publish` only files the event in each
matching subscriber's buffer, which keeps the *latest* observation per datastream (older
ones are overwritten) and a bounded queue of alert and case events; the subscriber drains
its buffer when it can.

Across processes (``twin serve --workers N``) a bus is bridged through the store's event
feed (:class:`twin.live.BusBridge`): :meth:`EventBus.publish` files an event here and hands
it to the bus's *forwarders*; events that other processes published arrive through
:meth:`EventBus.deliver`, which files them here only, so nothing goes round twice.
"""

from __future__ import annotations

import threading
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from typing import Any

#: Event kinds.
KINDS: tuple[str, ...] = ("observation", "alert", "case")
#: Alert and case events a subscriber buffer holds before dropping the oldest.
QUEUE_LIMIT = 10_000


class Subscription:
    """One subscriber's filter and buffer.

    Parameters
    ----------
    prefixes : object code prefixes it wants (``None``: everything)
    kinds : event kinds it wants (``None``: all)
    notify : called (from the publishing thread) when the buffer goes from empty to not empty
    """

    def __init__(
        self,
        prefixes: Sequence[str] | None,
        kinds: Sequence[str] | None,
        notify: Callable[[], None] | None = None,
    ) -> None:
        self.prefixes = tuple(prefixes) if prefixes is not None else None
        self.kinds = frozenset(kinds) if kinds is not None else frozenset(KINDS)
        self.notify = notify
        self._lock = threading.Lock()
        self._latest: OrderedDict[int, dict[str, Any]] = OrderedDict()
        self._queue: deque[dict[str, Any]] = deque(maxlen=QUEUE_LIMIT)
        self.overwritten = 0

    def wants(self, event: dict[str, Any]) -> bool:
        """Whether the event passes the filter."""
        if event["type"] not in self.kinds:
            return False
        if self.prefixes is None:
            return True
        code = event.get("code")
        return isinstance(code, str) and code.startswith(self.prefixes)

    def put(self, event: dict[str, Any]) -> None:
        """File an event (observations replace the previous one of their datastream)."""
        with self._lock:
            was_empty = not self._latest and not self._queue
            if event["type"] == "observation":
                key = int(event["datastream"])
                if key in self._latest:
                    self.overwritten += 1
                    del self._latest[key]
                self._latest[key] = event
            else:
                self._queue.append(event)
        if was_empty and self.notify is not None:
            self.notify()

    def drain(self) -> list[dict[str, Any]]:
        """Everything buffered, alerts and cases first, then latest observations."""
        with self._lock:
            events = [*self._queue, *self._latest.values()]
            self._queue.clear()
            self._latest.clear()
        return events


#: Called with every event published on a bus (not with those delivered from elsewhere).
Forwarder = Callable[[dict[str, Any]], None]


class EventBus:
    """Publishes events to subscriptions."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subscriptions: list[Subscription] = []
        self._forwarders: list[Forwarder] = []
        self.published = 0
        self.delivered = 0

    def forward(self, forwarder: Forwarder) -> None:
        """Also hand every event published here to ``forwarder`` (after the subscribers)."""
        with self._lock:
            self._forwarders.append(forwarder)

    def subscribe(self, subscription: Subscription) -> Subscription:
        """Add a subscription; returns it."""
        with self._lock:
            self._subscriptions.append(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        """Remove a subscription (a no-op if it is not there)."""
        with self._lock:
            if subscription in self._subscriptions:
                self._subscriptions.remove(subscription)

    def publish(self, event: dict[str, Any]) -> None:
        """File ``event`` (``{"type": kind, "code": object code, ...}``) with every
        subscription that wants it, then hand it to the forwarders."""
        with self._lock:
            targets = list(self._subscriptions)
            forwarders = list(self._forwarders)
        self.published += 1
        for subscription in targets:
            if subscription.wants(event):
                subscription.put(event)
        for forwarder in forwarders:
            forwarder(event)

    def deliver(self, event: dict[str, Any]) -> None:
        """File an event that another process published (no forwarding)."""
        with self._lock:
            targets = list(self._subscriptions)
        self.delivered += 1
        for subscription in targets:
            if subscription.wants(event):
                subscription.put(event)
