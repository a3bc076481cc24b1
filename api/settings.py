"""What the API service is told at start: the store, the key file, bootstrap keys.

Environment variables (read by :meth:`Settings.from_env` only; a bare ``Settings()`` reads
nothing):

====================  ============================================================
``TWIN_STORE``        SQLite file or ``postgresql://`` URL (default ``twin.db``)
``TWIN_KEYS_FILE``    an old key file to import into the store once (ADR 0019)
``TWIN_API_KEYS``     bootstrap keys ``key:role[:scope,...];...`` (memory only)
``TWIN_ADMIN_KEY``    one bootstrap admin key
``TWIN_CACHE``        derived files: tilesets, run folders (``<store>.cache``)
``TWIN_JOB_WORKERS``  threads for tileset builds and other jobs (default 2)
``TWIN_RUN_WORKERS``  drill runs at once in worker processes (default cores - 1)
``TWIN_RAY``          ``auto``, ``local`` or ``ray://host:port``: drills as Ray tasks
``TWIN_WEB_MODULES``  the viewer's ``node_modules``
``TWIN_DATA``         the catalogue of named drill inputs (default ``assets/``)
``TWIN_MQTT_URL``     the MQTT broker of the live ingest
====================  ============================================================"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

#: Where ``make install`` puts the viewer's npm modules (the checkout's ``node_modules``).
WEB_MODULES = Path(__file__).resolve().parents[1] / "node_modules"

#: The named inputs drills run on: the checkout's ``assets/``.
DATA_DIR = Path(__file__).resolve().parents[1] / "assets"

#: The old key file of a PostgreSQL store, which has no path to sit next to (imported into
#: the store's ``api_keys`` when found, ADR 0019).
POSTGRES_KEYS_FILE = "twin.keys.json"


@dataclass(frozen=True)
class BootstrapKey:
    """A key given in the environment: held in memory only, never written to the store.

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
    keys_file : the key file of earlier versions, imported into the store's ``api_keys``
        table when found and then renamed ``*.imported``; ``None`` for
        ``<store path>.keys.json``
    bootstrap_keys : keys held in memory only (e.g. a first admin key for a container)
    cache_dir : where built tilesets are kept; ``None`` for ``<store path>.cache``
    job_workers : jobs that run at once
    web_modules : the ``node_modules`` holding three.js and 3d-tiles-renderer
    data_dir : the catalogue of named drill inputs (networks, venues, drainage models)
    mqtt_url : MQTT broker of the live ingest (``mqtt://host:port``), or ``None``
    mqtt_prefix : topic prefix of the live ingest (``""`` or ending in ``/``)
    mqtt_client_id : MQTT client id of the deployment (fixed, so the broker keeps the
        session); the API processes take turns on it through a lease in the store, so one
        subscribes at a time (ADR 0019)
    run_workers : drill runs executing at once in worker processes (``TWIN_RUN_WORKERS``)
    ray_address : ``None`` for local worker processes, ``auto``/``local``/``ray://host:port``
        to run each drill as a Ray task (``TWIN_RAY``)
    """

    store_url: str | Path = "twin.db"
    keys_file: str | Path | None = None
    bootstrap_keys: tuple[BootstrapKey, ...] = field(default_factory=tuple)
    cache_dir: str | Path | None = None
    job_workers: int = 2
    web_modules: str | Path = field(default_factory=lambda: WEB_MODULES)
    data_dir: str | Path = field(default_factory=lambda: DATA_DIR)

    mqtt_url: str | None = None
    mqtt_prefix: str = ""
    mqtt_client_id: str = "citytwin-ingest"
    run_workers: int = field(default_factory=lambda: default_run_workers())
    ray_address: str | None = None

    @property
    def data_path(self) -> Path:
        """The catalogue of named drill inputs."""
        return Path(self.data_dir)

    @property
    def cache_path(self) -> Path:
        """Where built tilesets and other derived files are kept."""
        if self.cache_dir is not None:
            return Path(self.cache_dir)
        url = str(self.store_url)
        if url.startswith(("postgresql://", "postgres://")):
            return Path("twin.cache")
        return Path(f"{url}.cache")

    @property
    def keys_path(self) -> Path:
        """Where earlier versions kept the hashed API keys (now imported into the store)."""
        if self.keys_file is not None:
            return Path(self.keys_file)
        url = str(self.store_url)
        if url.startswith(("postgresql://", "postgres://")):
            return Path(POSTGRES_KEYS_FILE)
        return Path(f"{url}.keys.json")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Settings from the ``TWIN_*`` environment variables in the module's table.

        Raises
        ------
        ValueError
            If ``TWIN_API_KEYS`` or ``TWIN_JOB_WORKERS`` is malformed.
        """
        env = os.environ if environ is None else environ
        keys = parse_bootstrap_keys(env.get("TWIN_API_KEYS", ""))
        admin = env.get("TWIN_ADMIN_KEY", "").strip()
        if admin:
            keys += (BootstrapKey(admin, "admin"),)
        workers = env.get("TWIN_JOB_WORKERS", "2").strip()
        if not workers.isdigit() or not 1 <= int(workers) <= 64:
            raise ValueError(f"TWIN_JOB_WORKERS must be a whole number 1..64, got {workers!r}")
        run_workers = env.get("TWIN_RUN_WORKERS", str(default_run_workers())).strip()
        if not run_workers.isdigit() or not 1 <= int(run_workers) <= 64:
            raise ValueError(f"TWIN_RUN_WORKERS must be a whole number 1..64, got {run_workers!r}")
        ray_address = env.get("TWIN_RAY", "").strip() or None
        if ray_address is not None and not (
            ray_address in ("auto", "local") or ray_address.startswith("ray://")
        ):
            raise ValueError(
                f"TWIN_RAY must be auto, local or ray://host:port, got {ray_address!r}"
            )
        return cls(
            run_workers=int(run_workers),
            ray_address=ray_address,
            store_url=env.get("TWIN_STORE") or "twin.db",
            keys_file=env.get("TWIN_KEYS_FILE") or None,
            bootstrap_keys=keys,
            cache_dir=env.get("TWIN_CACHE") or None,
            job_workers=int(workers),
            web_modules=env.get("TWIN_WEB_MODULES") or WEB_MODULES,
            data_dir=env.get("TWIN_DATA") or DATA_DIR,
            mqtt_url=env.get("TWIN_MQTT_URL") or None,
        )


def default_run_workers() -> int:
    """Cores less one (the API process keeps one), at least one."""
    return max(1, (os.cpu_count() or 2) - 1)


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
