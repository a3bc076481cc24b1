"""What the API service is told at start: the store, the key file, bootstrap keys.

Environment variables (read by :meth:`Settings.from_env` only; a bare ``Settings()`` reads
nothing):

==================  ====================================================================
``TWIN_STORE``      store URL: a SQLite file path or ``postgresql://...`` (``twin.db``)
``TWIN_KEYS_FILE``  the API key file (default ``<store path>.keys.json``)
``TWIN_API_KEYS``   bootstrap keys held in memory only: ``key:role[:scope1,scope2];...``
``TWIN_MQTT_URL``   broker the live twin ingests from (``mqtt://host:port``; unset: HTTP only)
==================  ====================================================================
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

#: The key file of a PostgreSQL store, which has no path to sit next to.
POSTGRES_KEYS_FILE = "twin.keys.json"


@dataclass(frozen=True)
class BootstrapKey:
    """A key given in the environment: never written to the key file.

    Attributes
    ----------
    key : the plaintext key
    role : one of :class:`api.keys.Role`
    scopes : code prefixes a pilot may see
    """

    key: str
    role: str
    scopes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Settings:
    """Settings of one API application.

    Attributes
    ----------
    store_url : SQLite file path or ``postgresql://`` URL
    keys_file : the API key file; ``None`` for ``<store path>.keys.json``
    bootstrap_keys : keys held in memory only (e.g. a first admin key for a container)
    mqtt_url : MQTT broker of the live ingest (``mqtt://host:port``), or ``None``
    mqtt_prefix : topic prefix of the live ingest (``""`` or ending in ``/``)
    mqtt_client_id : MQTT client id (fixed, so the broker keeps the session)
    """

    store_url: str | Path = "twin.db"
    keys_file: str | Path | None = None
    bootstrap_keys: tuple[BootstrapKey, ...] = field(default_factory=tuple)
    mqtt_url: str | None = None
    mqtt_prefix: str = ""
    mqtt_client_id: str = "citytwin-ingest"

    @property
    def keys_path(self) -> Path:
        """Where the hashed API keys are kept."""
        if self.keys_file is not None:
            return Path(self.keys_file)
        url = str(self.store_url)
        if url.startswith(("postgresql://", "postgres://")):
            return Path(POSTGRES_KEYS_FILE)
        return Path(f"{url}.keys.json")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Settings from ``TWIN_STORE``, ``TWIN_KEYS_FILE`` and ``TWIN_API_KEYS``.

        Raises
        ------
        ValueError
            If ``TWIN_API_KEYS`` is malformed.
        """
        env = os.environ if environ is None else environ
        return cls(
            store_url=env.get("TWIN_STORE") or "twin.db",
            keys_file=env.get("TWIN_KEYS_FILE") or None,
            bootstrap_keys=parse_bootstrap_keys(env.get("TWIN_API_KEYS", "")),
            mqtt_url=env.get("TWIN_MQTT_URL") or None,
        )


def parse_bootstrap_keys(text: str) -> tuple[BootstrapKey, ...]:
    """Parse ``key:role[:scope1,scope2];...`` (empty entries are ignored).

    Raises
    ------
    ValueError
        If an entry lacks a key or a role; the message never repeats the key.
    """
    keys = []
    for number, entry in enumerate(text.split(";"), start=1):
        entry = entry.strip()
        if not entry:
            continue
        parts = entry.split(":")
        if len(parts) not in (2, 3) or not parts[0].strip() or not parts[1].strip():
            raise ValueError(
                f"TWIN_API_KEYS entry {number} must look like key:role[:scope1,scope2]"
            )
        scopes = (
            tuple(s.strip() for s in parts[2].split(",") if s.strip()) if len(parts) == 3 else ()
        )
        keys.append(BootstrapKey(parts[0].strip(), parts[1].strip().lower(), scopes))
    return tuple(keys)
