"""The event feed: changes that every process of a deployment must hear, through the store.

Several API processes (``twin serve --workers N``) and the worker processes that execute
runs share one store; what one of them changes (a layer put, a run's progress, an alert
raised by a drill) must reach the WebSocket clients of all of them. Each change is one row
of ``twin_events`` (an increasing id, a topic, a JSON payload and the process it came from);
every process follows the table from the id it started at and hands each row to the local
listeners of its topic. One path for both engines (SQLite and PostgreSQL), tested on both
(ADR 0018)::

    feed = EventFeed("twin.db")
    feed.listen("layer", lambda payload: print(payload))
    feed.start()                          # a thread polling every ``poll_s``
    feed.publish("layer", {"site": "denhaag", "name": "flood-depth"})

A feed hears its own events at once (``publish`` calls the local listeners before it
returns, unless told ``local=False``) and never a second time from the table: each feed is
an *origin* of its own (two feeds in one process hear each other through the table, as two
processes do). Rows older than ``keep_s`` are deleted by
whichever process publishes after them, so the table stays small.
"""

from __future__ import annotations

import logging
import os
import secrets
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from twin.db import LiveDb

logger = logging.getLogger(__name__)

Listener = Callable[[dict[str, Any]], None]

_DDL = [
    """CREATE TABLE IF NOT EXISTS twin_events (
        id {id}, topic TEXT NOT NULL, origin TEXT NOT NULL, created DOUBLE PRECISION NOT NULL,
        payload TEXT NOT NULL)""",
]

#: PostgreSQL advisory lock key serialising publishers (any constant of our own).
_PUBLISH_LOCK = 0x7477696E_6576

#: This process's name in the feed (a restarted process is a new origin); each
#: :class:`EventFeed` adds a suffix of its own.
ORIGIN = f"{os.getpid()}-{secrets.token_hex(4)}"


class EventFeed:
    """Publishes changes to the store and follows what other processes publish.

    Parameters
    ----------
    url : the store (SQLite path or ``postgresql://``)
    poll_s : seconds between reads of the table
    keep_s : rows older than this are pruned

    Raises
    ------
    ValueError
        If ``poll_s`` is not positive.
    StoreError
        If the store cannot be opened.
    """

    def __init__(self, url: str | Path, poll_s: float = 0.1, keep_s: float = 600.0) -> None:
        if not poll_s > 0:
            raise ValueError(f"poll_s(={poll_s}) must be > 0")
        self.db = LiveDb(url)
        with self.db.transaction() as cur:
            for statement in _DDL:
                cur.execute(self.db.ddl(statement))
        self.poll_s = poll_s
        self.keep_s = keep_s
        self._listeners: dict[str, list[Listener]] = {}
        self._lock = threading.Lock()
        rows = self.db.query("SELECT MAX(id) FROM twin_events")
        self._last = int(rows[0][0] or 0)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._published = 0
        self._retain: dict[str, tuple[float, int]] = {}  # topic -> (keep_s, publishes)
        #: this feed's name in ``twin_events.origin``
        self.origin = f"{ORIGIN}-{secrets.token_hex(2)}"

    def listen(self, topic: str, listener: Listener) -> None:
        """Call ``listener(payload)`` for every event of ``topic`` (from any process)."""
        with self._lock:
            self._listeners.setdefault(topic, []).append(listener)

    def retain(self, topic: str, keep_s: float) -> None:
        """Keep rows of ``topic`` only ``keep_s`` (shorter than the feed's ``keep_s``: for
        bulky topics whose old rows nobody needs, such as batches of latest readings).

        Raises
        ------
        ValueError
            If ``keep_s`` is not positive.
        """
        if not keep_s > 0:
            raise ValueError(f"keep_s(={keep_s}) must be > 0")
        with self._lock:
            self._retain[topic] = (keep_s, 0)

    def publish(self, topic: str, payload: dict[str, Any], local: bool = True) -> None:
        """Record an event for every process and hand it to this feed's listeners.

        Parameters
        ----------
        topic : what the event is about (listeners are chosen by it)
        payload : JSON-serialisable
        local : also call this feed's listeners now (``False`` when the caller has already
            told them, e.g. a bus bridge that delivered the event in-process)

        Raises
        ------
        StoreError, sqlite3.Error, psycopg.Error
            If the store cannot be written (the event is then not recorded).
        """
        now = time.time()
        with self.db.transaction() as cur:
            if self.db.postgres:
                # ids are taken at insert but seen at commit: publishers take turns, so no
                # follower reads id n+1 before id n is committed (and skips n for ever)
                cur.execute("SELECT pg_advisory_xact_lock(%s)", (_PUBLISH_LOCK,))
            cur.execute(
                self.db.sql(
                    "INSERT INTO twin_events (topic, origin, created, payload) VALUES (?, ?, ?, ?)"
                ),
                (topic, self.origin, now, orjson.dumps(payload).decode()),
            )
            self._published += 1
            if self._published % 200 == 1:
                cur.execute(
                    self.db.sql("DELETE FROM twin_events WHERE created < ?"), (now - self.keep_s,)
                )
            with self._lock:
                keep_s, count = self._retain.get(topic, (0.0, 0))
                if keep_s:
                    self._retain[topic] = (keep_s, count + 1)
            if keep_s and count % 20 == 0:
                cur.execute(
                    self.db.sql("DELETE FROM twin_events WHERE topic = ? AND created < ?"),
                    (topic, now - keep_s),
                )
        if local:
            self._deliver(topic, payload)

    def poll(self) -> int:
        """Deliver what other processes published since the last poll; returns how many."""
        rows = self.db.query(
            "SELECT id, topic, origin, payload FROM twin_events WHERE id > ? ORDER BY id",
            (self._last,),
        )
        delivered = 0
        for ident, topic, origin, payload in rows:
            self._last = max(self._last, int(ident))
            if origin == self.origin:
                continue
            self._deliver(str(topic), orjson.loads(payload))
            delivered += 1
        return delivered

    def start(self) -> None:
        """Follow the table in a thread."""
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._follow, name="event-feed", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop following and close the connection."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        self.db.close()

    def _deliver(self, topic: str, payload: dict[str, Any]) -> None:
        with self._lock:
            listeners = list(self._listeners.get(topic, ()))
        for listener in listeners:
            try:
                listener(payload)
            except Exception:  # one listener's bug must not stop the feed
                logger.exception("feed listener of %r failed", topic)

    def _follow(self) -> None:
        while not self._stop.wait(self.poll_s):
            try:
                self.poll()
            except Exception:  # the store may be briefly busy; try again next time
                logger.exception("reading the event feed failed")
