"""Leases in the store: one holder of a named duty per deployment, taken over when it dies.

Several processes over one store (``twin serve --workers N``) each run a live twin; some
duties must be done by one of them only — the MQTT subscription on the deployment's fixed
client id (ADR 0019). A lease is a row of ``twin_leases`` (name, holder, expiry): a process
holds it while it renews it within ``ttl_s``; when the holder stops renewing (killed, hung,
cut off from the store) another takes it at its next try::

    lease = Lease(db, "mqtt:citytwin-ingest", ttl_s=5.0)
    if lease.acquire():     # take or renew, in one statement
        ...                 # do the duty; call acquire() again well within ttl_s
    lease.release()

Expiry is wall-clock time (``time.time()``) stored in the row; the processes of one
deployment are expected to share a clock to well within ``ttl_s`` (NTP).
"""

from __future__ import annotations

import secrets
import time

from twin.db import LiveDb

_DDL = """CREATE TABLE IF NOT EXISTS twin_leases (
    name TEXT PRIMARY KEY, holder TEXT NOT NULL, expires DOUBLE PRECISION NOT NULL)"""


class Lease:
    """A named lease held by this instance or by another.

    Parameters
    ----------
    db : the store
    name : what the lease is for
    ttl_s : how long an acquisition lasts without renewal, seconds

    Raises
    ------
    ValueError
        If ``ttl_s`` is not positive or ``name`` is empty.
    StoreError
        If the lease table cannot be created.
    """

    def __init__(self, db: LiveDb, name: str, ttl_s: float = 5.0) -> None:
        if not ttl_s > 0:
            raise ValueError(f"ttl_s(={ttl_s}) must be > 0")
        if not name:
            raise ValueError("a lease needs a name")
        self.db = db
        self.name = name
        self.ttl_s = ttl_s
        #: who this instance is in ``twin_leases.holder``
        self.holder = f"{secrets.token_hex(6)}"
        self._valid_until = 0.0  # time.monotonic() until which this instance may act
        with db.transaction() as cur:
            cur.execute(_DDL)

    @property
    def held(self) -> bool:
        """Whether this instance holds the lease (as of its last :meth:`acquire`)."""
        return time.monotonic() < self._valid_until

    def acquire(self) -> bool:
        """Take the lease if it is free or expired, or renew it if held; returns whether
        this instance holds it now.

        Raises
        ------
        StoreError, sqlite3.Error, psycopg.Error
            If the store cannot be written (the lease then runs out at its expiry).
        """
        started, now = time.monotonic(), time.time()
        with self.db.transaction() as cur:
            cur.execute(
                self.db.sql(
                    "INSERT INTO twin_leases (name, holder, expires) VALUES (?, ?, ?) "
                    "ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, "
                    "expires = excluded.expires "
                    "WHERE twin_leases.holder = excluded.holder OR twin_leases.expires < ?"
                ),
                (self.name, self.holder, now + self.ttl_s, now),
            )
            cur.execute(self.db.sql("SELECT holder FROM twin_leases WHERE name = ?"), (self.name,))
            row = cur.fetchone()
        mine = row is not None and row[0] == self.holder
        # counted from before the write, so this instance stops before others may start
        self._valid_until = started + self.ttl_s if mine else 0.0
        return mine

    def release(self) -> None:
        """Give the lease up at once (a no-op if another holds it).

        Raises
        ------
        StoreError, sqlite3.Error, psycopg.Error
            If the store cannot be written (the lease then runs out at its expiry).
        """
        self._valid_until = 0.0
        self.db.execute(
            "DELETE FROM twin_leases WHERE name = ? AND holder = ?", (self.name, self.holder)
        )
