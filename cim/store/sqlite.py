"""The embedded engine: one SQLite file in WAL mode."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from cim.errors import StoreError
from cim.store.base import Store


class SqliteStore(Store):
    """A store in one SQLite file (created with its parent folder if absent)."""

    def __init__(self, path: Path) -> None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"{path}: cannot open the SQLite store ({exc})") from None
        super().__init__(str(path))

    def _connection(self) -> Any:
        return self._conn

    @contextmanager
    def transaction(self) -> Iterator[Any]:
        cursor = self._conn.cursor()
        cursor.execute("BEGIN IMMEDIATE")
        try:
            yield cursor
        except BaseException:
            cursor.execute("ROLLBACK")
            raise
        else:
            cursor.execute("COMMIT")
        finally:
            cursor.close()
