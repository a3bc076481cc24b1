"""The store: one interface, two engines (embedded SQLite by default, PostgreSQL at scale)."""

from __future__ import annotations

from pathlib import Path

from cim.store.base import ImportPlan, Store

__all__ = ["ImportPlan", "Store", "open_store"]


def open_store(url: str | Path) -> Store:
    """Open (and create or migrate) the store at ``url``.

    ``postgresql://...`` opens a PostgreSQL database; anything else is a SQLite file path.

    Raises
    ------
    StoreError
        If the store cannot be opened.
    """
    text = str(url)
    if text.startswith(("postgresql://", "postgres://")):
        from cim.store.postgres import PostgresStore

        return PostgresStore(text)
    from cim.store.sqlite import SqliteStore

    return SqliteStore(Path(text))
