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
====================  ============================================================

The request limits (body size, SensorThings ``$filter``/``$top``/``$expand`` bounds, the
statement timeout) have their own ``TWIN_*`` variables, listed in :data:`LIMIT_ENV` and in
``docs/limits.md``."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from twin.sta.limits import StaLimits

#: Where ``make install`` puts the viewer's npm modules (the checkout's ``node_modules``).
WEB_MODULES = Path(__file__).resolve().parents[1] / "node_modules"

#: The named inputs drills run on: the checkout's ``assets/``.
DATA_DIR = Path(__file__).resolve().parents[1] / "assets"

#: Largest request body, bytes, of every route but the uploads (``TWIN_MAX_BODY_BYTES``).
MAX_BODY_BYTES = 1 << 20
#: Largest request body, bytes, of the upload routes (``PUT`` a layer, ``CreateObservations``;
#: ``TWIN_MAX_UPLOAD_BYTES``).
MAX_UPLOAD_BYTES = 64 << 20

#: Longest title of a case, name of a rule, characters.
TITLE_CHARS = 200
#: Longest note on a case or alert step, characters.
NOTE_CHARS = 2_000
#: Longest code, class code, unit or property name in a case, rule or alert body, characters.
CODE_CHARS = 128
#: Most levels of one rule.
RULE_LEVELS = 16

#: Drill runs one key may have queued or running at once (``TWIN_MAX_RUNS_PER_KEY``).
MAX_RUNS_PER_KEY = 4

#: Snapshots one key may have in progress (``TWIN_RENDERS_PER_KEY``).
RENDERS_PER_KEY = 2
#: Snapshots that may wait behind the one rendering (``TWIN_RENDER_QUEUE``).
RENDER_QUEUE = 4

#: The bound of the built GLBs kept on disk, bytes (``TWIN_SCENE_CACHE_BYTES``).
SCENE_CACHE_BYTES = 1 << 30

#: Setting -> (environment variable, type, lowest, highest) of the request limits.
LIMIT_ENV: dict[str, tuple[str, type, float, float]] = {
    "max_body_bytes": ("TWIN_MAX_BODY_BYTES", int, 1024, 1 << 30),
    "max_upload_bytes": ("TWIN_MAX_UPLOAD_BYTES", int, 1024, 1 << 32),
    "sta_filter_max_chars": ("TWIN_STA_FILTER_MAX_CHARS", int, 16, 1 << 20),
    "sta_filter_max_depth": ("TWIN_STA_FILTER_MAX_DEPTH", int, 1, 64),
    "sta_filter_max_terms": ("TWIN_STA_FILTER_MAX_TERMS", int, 1, 10_000),
    "sta_max_top": ("TWIN_STA_MAX_TOP", int, 1, 1_000_000),
    "sta_expand_max_depth": ("TWIN_STA_EXPAND_MAX_DEPTH", int, 0, 10),
    "sta_max_entities": ("TWIN_STA_MAX_ENTITIES", int, 1, 10_000_000),
    "sta_max_answer_bytes": ("TWIN_STA_MAX_ANSWER_BYTES", int, 1024, 1 << 34),
    "sta_timeout_s": ("TWIN_STA_TIMEOUT_S", float, 0.01, 3_600),
    "max_runs_per_key": ("TWIN_MAX_RUNS_PER_KEY", int, 1, 1_000),
    "renders_per_key": ("TWIN_RENDERS_PER_KEY", int, 1, 64),
    "render_queue": ("TWIN_RENDER_QUEUE", int, 0, 64),
    "scene_cache_bytes": ("TWIN_SCENE_CACHE_BYTES", int, 1 << 20, 1 << 40),
}

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
    max_body_bytes : largest request body of every route but the uploads (413 above it)
    max_upload_bytes : largest request body of the upload routes (``PUT`` a layer,
        ``CreateObservations``)
    sta_filter_max_chars, sta_filter_max_depth, sta_filter_max_terms : bounds of a
        SensorThings ``$filter``: its length, nesting depth and conditions (400 above them)
    sta_max_top : the largest SensorThings ``$top``
    sta_expand_max_depth : how deep SensorThings ``$expand`` may nest
    sta_max_entities : most entities one SensorThings answer holds, expanded ones included
    sta_max_answer_bytes : about the largest SensorThings answer, bytes
    sta_timeout_s : longest a SensorThings read may run, its statements together (503 past it)
    max_runs_per_key : drill runs one key may have queued or running (429 past it)
    renders_per_key : snapshots (``image.png``) one key may have in progress (429 past it)
    render_queue : snapshots that may wait behind the one rendering (429 past it)
    scene_cache_bytes : the bound of the built GLBs kept on disk (least recently used go)
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

    max_body_bytes: int = MAX_BODY_BYTES
    max_upload_bytes: int = MAX_UPLOAD_BYTES
    sta_filter_max_chars: int = StaLimits.filter_max_chars
    sta_filter_max_depth: int = StaLimits.filter_max_depth
    sta_filter_max_terms: int = StaLimits.filter_max_terms
    sta_max_top: int = StaLimits.max_top
    sta_expand_max_depth: int = StaLimits.expand_max_depth
    sta_max_entities: int = StaLimits.max_entities
    sta_max_answer_bytes: int = StaLimits.max_answer_bytes
    sta_timeout_s: float = StaLimits.timeout_s
    max_runs_per_key: int = MAX_RUNS_PER_KEY
    renders_per_key: int = RENDERS_PER_KEY
    render_queue: int = RENDER_QUEUE
    scene_cache_bytes: int = SCENE_CACHE_BYTES

    @property
    def sta_limits(self) -> StaLimits:
        """The SensorThings bounds of these settings."""
        return StaLimits(
            filter_max_chars=self.sta_filter_max_chars,
            filter_max_depth=self.sta_filter_max_depth,
            filter_max_terms=self.sta_filter_max_terms,
            max_top=self.sta_max_top,
            expand_max_depth=self.sta_expand_max_depth,
            max_entities=self.sta_max_entities,
            max_answer_bytes=self.sta_max_answer_bytes,
            timeout_s=self.sta_timeout_s,
        )

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
            If ``TWIN_API_KEYS``, ``TWIN_JOB_WORKERS`` or a limit of :data:`LIMIT_ENV` is
            malformed or out of its range.
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
            **limits_from_env(env),
        )


def limits_from_env(env: Mapping[str, str]) -> dict[str, Any]:
    """The limits of :data:`LIMIT_ENV` set in ``env`` (unset ones keep their defaults).

    Raises
    ------
    ValueError
        If one is not a number of its type, or outside its range (the message names it).
    """
    out: dict[str, Any] = {}
    for name, (variable, kind, lowest, highest) in LIMIT_ENV.items():
        text = env.get(variable, "").strip()
        if not text:
            continue
        try:
            value: int | float = int(text) if kind is int else float(text)
        except ValueError:
            what = "whole number" if kind is int else "number"
            raise ValueError(f"{variable} must be a {what}, got {text[:40]!r}") from None
        if not lowest <= value <= highest:
            raise ValueError(f"{variable} must be in {lowest:g}..{highest:g}, got {value:g}")
        out[name] = value
    return out


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
