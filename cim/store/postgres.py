"""The multi-worker engine: PostgreSQL through psycopg 3."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from cim.errors import StoreError
from cim.store.base import Store


class PostgresStore(Store):
    """A store in a PostgreSQL database (``postgresql://user@host:port/db``)."""

    placeholder = "%s"
    blob_type = "BYTEA"

    def __init__(self, url: str) -> None:
        try:
            import psycopg
        except ImportError:
            raise StoreError(
                "the PostgreSQL store needs psycopg: install the 'postgres' extra"
            ) from None
        try:
            self._conn = psycopg.connect(url, autocommit=True)
        except psycopg.Error as exc:
            raise StoreError(f"cannot connect to {_redact(url)}: {exc}") from None
        super().__init__(_redact(url))

    def _connection(self) -> Any:
        return self._conn

    @contextmanager
    def transaction(self) -> Iterator[Any]:
        with self._conn.transaction(), self._conn.cursor() as cursor:
            yield cursor


def _redact(url: str) -> str:
    """The URL without a password."""
    if "@" not in url or "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    credentials, host = rest.rsplit("@", 1)
    user = credentials.split(":", 1)[0]
    return f"{scheme}://{user}@{host}"
