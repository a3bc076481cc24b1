"""API keys: roles, principals and the hashed keys in the store.

Keys live in the store's ``api_keys`` table (SQLite or PostgreSQL), one row per key with
only its sha256 hash, short id, role, scopes, name, creation time and revocation time; the
plaintext is shown once by :meth:`KeyStore.create_key`. Every API process reads the table
on each authentication (one indexed lookup, no cache), so a key made or revoked through one
process — or by ``twin keys create`` — is valid or dead in every other at once (ADR 0019).

Upgrade path: the key file of earlier versions (JSON beside the store,
``<store path>.keys.json``) is imported into the table when found — at the first use of a
store-backed :class:`KeyStore` and again whenever it reappears — in one transaction that
skips hashes already present, then renamed ``<file>.imported``; two processes starting
together both import it harmlessly. A :class:`KeyStore` opened on a ``.json`` path (the old
``KeyStore(settings.keys_path)`` form) still writes that file, which the serving processes
then import at their next authentication.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import logging
import os
import re
import secrets
import threading
from collections.abc import Iterable
from dataclasses import dataclass, replace
from enum import StrEnum
from pathlib import Path
from typing import Any

from api.settings import BootstrapKey
from cim.errors import StoreError
from twin.db import LiveDb

logger = logging.getLogger(__name__)

KEY_PREFIX = "twk_"
_SCOPE = re.compile(r"[0-9A-Za-z]{1,32}")
#: a site name in a scope (``SITE:CODE``), as sites are named at import
_SITE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


class Role(StrEnum):
    """What a key may do."""

    ADMIN = "admin"
    PLANNER = "planner"
    DISPLAY = "display"
    PILOT = "pilot"
    DEVICE = "device"


#: Roles that may read the CIM (a device key only ingests).
READ_ROLES: frozenset[Role] = frozenset({Role.ADMIN, Role.PLANNER, Role.DISPLAY, Role.PILOT})


@dataclass(frozen=True)
class Principal:
    """Who is calling.

    Attributes
    ----------
    key_id : short public id of the key (a prefix of its hash)
    role : what the key may do
    scopes : for a pilot, the code prefixes it may see; empty for every other role
    name : the key's human name
    sites : the site of each scope (``""`` for a scope of an old key that named none and
        could not be placed: it matches no site)
    """

    key_id: str
    role: Role
    scopes: tuple[str, ...] = ()
    name: str = ""
    sites: tuple[str, ...] = ()

    @property
    def scoped(self) -> bool:
        """Whether this principal sees only part of the CIM."""
        return self.role is Role.PILOT

    @property
    def grants(self) -> tuple[str, ...]:
        """The scopes as stored: ``SITE:CODE`` (a bare ``CODE`` where no site is known)."""
        return tuple(
            f"{site}:{code}" if site else code
            for code, site in zip(self.scopes, self.sites, strict=True)
        )

    def sees(self, code: str, site: str | None = None) -> bool:
        """Whether object ``code`` (of ``site``, when the caller knows it) is within this
        principal's scope: under one of its unit codes, in that unit's site."""
        if not self.scoped:
            return True
        return any(
            code.startswith(prefix) and bool(own) and (site is None or own == site)
            for prefix, own in zip(self.scopes, self.sites, strict=True)
        )

    def sees_site(self, site: str) -> bool:
        """Whether anything of ``site`` is within this principal's scope."""
        return not self.scoped or site in self.sites

    def in_site(self, site: str) -> tuple[str, ...]:
        """The code prefixes this principal may see in ``site`` (all of them unscoped: ``()``
        then means everything)."""
        return tuple(p for p, s in zip(self.scopes, self.sites, strict=True) if s == site)


def principal_of(key_id: str, role: Role, grants: Iterable[str], name: str = "") -> Principal:
    """A principal from stored scopes (``SITE:CODE``, or a bare ``CODE`` of an old key)."""
    codes: list[str] = []
    sites: list[str] = []
    for grant in grants:
        site, _, code = grant.rpartition(":")
        codes.append(code)
        sites.append(site)
    return Principal(key_id, role, tuple(codes), name, tuple(sites))


class UnknownKeyError(Exception):
    """The presented key is not known."""


def hash_key(key: str) -> str:
    """The hex sha256 of a key, as kept in the store."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def validate_grant(role: str, scopes: Iterable[str]) -> tuple[Role, tuple[str, ...]]:
    """Check a role and its scopes.

    Raises
    ------
    ValueError
        If the role is unknown, a pilot has no scope, another role has one, or a scope is
        not ``SITE:CODE`` or ``CODE`` (a code prefix of 1 to 32 letters and digits).
    """
    try:
        parsed = Role(role)
    except ValueError:
        allowed = ", ".join(r.value for r in Role)
        raise ValueError(f"role(={role!r}) must be one of {allowed}") from None
    cleaned = tuple(dict.fromkeys(s.strip() for s in scopes))
    for scope in cleaned:
        site, colon, code = scope.rpartition(":")
        if not _SCOPE.fullmatch(code) or (colon and not _SITE.fullmatch(site)):
            raise ValueError(
                f"scope(={scope!r}) must be SITE:CODE or CODE, a code prefix of letters and digits"
            )
    if parsed is Role.PILOT and not cleaned:
        raise ValueError("a pilot key needs at least one unit code scope")
    if parsed is not Role.PILOT and cleaned:
        raise ValueError(f"role(={parsed.value}) takes no scopes; only pilot keys are scoped")
    return parsed, cleaned


@dataclass(frozen=True)
class _Record:
    sha256: str
    principal: Principal
    created: str


_DDL = """CREATE TABLE IF NOT EXISTS api_keys (
    hash TEXT PRIMARY KEY, id TEXT NOT NULL, role TEXT NOT NULL, scopes TEXT NOT NULL,
    name TEXT NOT NULL, created TEXT NOT NULL, revoked TEXT)"""
#: PostgreSQL advisory lock key of the table's creation (processes starting together).
_MIGRATE_LOCK = 0x7477696E_6B65
#: What an imported key file is renamed to (its name plus this).
IMPORTED_SUFFIX = ".imported"


def _is_url(location: str | Path) -> bool:
    return str(location).startswith(("postgresql://", "postgres://"))


def legacy_keys_file(store: str | Path) -> Path | None:
    """The key file earlier versions kept beside a SQLite store (``None`` for PostgreSQL,
    whose file name came from the settings)."""
    return None if _is_url(store) else Path(f"{store}.keys.json")


class KeyStore:
    """The API keys of one deployment, in its store.

    Parameters
    ----------
    store : the store (SQLite path or ``postgresql://`` URL); a path ending in ``.json``
        names a key file of the old kind instead, which this instance reads and writes
        (and serving processes import)
    bootstrap : keys held in memory only (from ``TWIN_API_KEYS``), never stored
    legacy_file : the old key file to import; ``None`` for ``<store path>.keys.json``
        (none for PostgreSQL)

    The store is opened at the first use, not here.

    Raises
    ------
    ValueError
        If a bootstrap key has a bad role or scope.
    """

    def __init__(
        self,
        store: str | Path,
        bootstrap: Iterable[BootstrapKey] = (),
        legacy_file: str | Path | None = None,
    ) -> None:
        self._lock = threading.RLock()
        self._db: LiveDb | None = None
        self._placements: dict[str, str] = {}
        file_only = not _is_url(store) and str(store).endswith(".json")
        self.store: str | Path | None = None if file_only else store
        default = Path(store) if file_only else legacy_keys_file(store)
        #: the old key file (imported into the store, or the storage itself without one)
        self.path: Path | None = Path(legacy_file) if legacy_file is not None else default
        self._file = _KeyFile(self.path) if self.path is not None else None
        self._bootstrap = []
        for key in bootstrap:
            role, scopes = validate_grant(key.role, key.scopes)
            digest = hash_key(key.key)
            self._bootstrap.append(
                _Record(digest, principal_of(digest[:12], role, scopes, "bootstrap"), "")
            )

    # -- the store ----------------------------------------------------------------------------
    def _database(self) -> LiveDb | None:
        """The store's connection (opened and migrated at the first call), or ``None`` for
        a key-file-only instance. Call with the lock held."""
        if self.store is None:
            return None
        if self._db is None:
            db = LiveDb(self.store)
            try:
                with db.transaction() as cur:
                    if db.postgres:
                        cur.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATE_LOCK,))
                    cur.execute(_DDL)
            except Exception as exc:
                db.close()
                raise StoreError(f"{db.store.url}: cannot prepare the API keys ({exc})") from exc
            self._db = db
        self._import_file(self._db)
        return self._db

    def _import_file(self, db: LiveDb) -> int:
        """Import the old key file if it is there, then retire it; returns the keys added."""
        if self._file is None:
            return 0
        found = self._file.read()
        if found is None:
            return 0
        stamp, records = found
        with db.transaction() as cur:
            before = _count(cur)
            for r in records:
                cur.execute(
                    db.sql(
                        "INSERT INTO api_keys (hash, id, role, scopes, name, created) "
                        "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (hash) DO NOTHING"
                    ),
                    _row(r),
                )
            added = _count(cur) - before
        self._file.retire(stamp)
        return added

    def close(self) -> None:
        """Close the store's connection (the next use opens it again)."""
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    # -- reading ------------------------------------------------------------------------------
    def authenticate(self, key: str) -> Principal:
        """The principal a plaintext key stands for (a key revoked in any process is
        refused at once).

        The store is looked up by the key's sha256 (which says nothing about the key), and
        the hash found is compared again in constant time.

        Raises
        ------
        UnknownKeyError
            If no live key matches.
        StoreError
            If the store cannot be opened or the old key file cannot be read.
        """
        digest = hash_key(key)
        found: Principal | None = None
        for record in self._bootstrap:
            if hmac.compare_digest(digest, record.sha256) and found is None:
                found = record.principal
        if found is not None:
            return self._placed(found)
        with self._lock:
            db = self._database()
            if db is None:
                assert self._file is not None
                records = self._file.records()
            else:
                rows = db.query(
                    "SELECT hash, id, role, scopes, name, created FROM api_keys "
                    "WHERE hash = ? AND revoked IS NULL",
                    (digest,),
                )
                records = [_record(row) for row in rows]
        for record in records:
            if hmac.compare_digest(digest, record.sha256) and found is None:
                found = record.principal
        if found is None:
            raise UnknownKeyError("unknown API key")
        return self._placed(found)

    def _sites_of(self, code: str) -> list[str]:
        """The sites holding object ``code`` (one in a store made since codes are unique in
        the store; an older store may hold a code in several). Call with the lock held."""
        db = self._database()
        if db is None:
            return []
        rows = db.query("SELECT DISTINCT site FROM objects WHERE code = ?", (code,))
        return sorted(str(r[0]) for r in rows)

    def _placed(self, principal: Principal) -> Principal:
        """``principal`` with each scope of an old key (a bare code) placed in the one site
        holding that code; a code held by no site or by several stays unplaced and matches
        nothing (the key must be re-issued as ``SITE:CODE``)."""
        if all(principal.sites) or not principal.scoped:
            return principal
        sites = list(principal.sites)
        with self._lock:
            for index, (code, site) in enumerate(zip(principal.scopes, sites, strict=True)):
                if site:
                    continue
                if code not in self._placements:
                    held = self._sites_of(code)
                    self._placements[code] = held[0] if len(held) == 1 else ""
                    if len(held) != 1:
                        logger.warning(
                            "pilot key %s: scope %s is held by %s; it sees nothing there until "
                            "re-issued as SITE:CODE",
                            principal.key_id,
                            code,
                            ", ".join(held) or "no site",
                        )
                sites[index] = self._placements[code]
        return replace(principal, sites=tuple(sites))

    def list_keys(self) -> list[dict[str, Any]]:
        """The live keys without their hashes: id, name, role, scopes, created.

        Raises
        ------
        StoreError
            If the store cannot be opened or the old key file cannot be read.
        """
        with self._lock:
            db = self._database()
            if db is None:
                assert self._file is not None
                records = self._file.records()
            else:
                records = [
                    _record(row)
                    for row in db.query(
                        "SELECT hash, id, role, scopes, name, created FROM api_keys "
                        "WHERE revoked IS NULL ORDER BY created, id"
                    )
                ]
        return [
            {
                "id": r.principal.key_id,
                "name": r.principal.name,
                "role": r.principal.role.value,
                "scopes": list(r.principal.grants),
                "created": r.created,
            }
            for r in records
        ]

    # -- writing ------------------------------------------------------------------------------
    def create_key(self, role: str, scopes: Iterable[str] = (), name: str = "") -> str:
        """Make a new key and store its hash; returns the plaintext, which is never kept.

        Parameters
        ----------
        role : ``admin``, ``planner``, ``display``, ``pilot`` or ``device``
        scopes : for a pilot, the unit codes (code prefixes) it may see
        name : a human label (who or what holds the key)

        Raises
        ------
        ValueError
            If the role or scopes are invalid (see :func:`validate_grant`).
        StoreError
            If the store cannot be opened.
        """
        parsed, cleaned = validate_grant(role, scopes)
        if self.store is not None:
            cleaned = self._name_sites(cleaned)
        key = KEY_PREFIX + secrets.token_urlsafe(32)
        digest = hash_key(key)
        created = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        record = _Record(digest, principal_of(digest[:12], parsed, cleaned, name), created)
        with self._lock:
            db = self._database()
            if db is None:
                assert self._file is not None
                self._file.write([*self._file.records(), record])
            else:
                with db.transaction() as cur:
                    cur.execute(
                        db.sql(
                            "INSERT INTO api_keys (hash, id, role, scopes, name, created) "
                            "VALUES (?, ?, ?, ?, ?, ?)"
                        ),
                        _row(record),
                    )
        return key

    def _name_sites(self, scopes: tuple[str, ...]) -> tuple[str, ...]:
        """``scopes`` with the site of each bare code named (``SITE:CODE``).

        Raises
        ------
        ValueError
            If no site, or more than one, holds a bare code.
        """
        named = []
        with self._lock:
            for scope in scopes:
                if ":" in scope:
                    named.append(scope)
                    continue
                held = self._sites_of(scope)
                if len(held) != 1:
                    where = f"sites {', '.join(held)} hold" if held else "no site holds"
                    raise ValueError(
                        f"scope(={scope!r}): {where} that code; name the site as SITE:{scope}"
                    )
                named.append(f"{held[0]}:{scope}")
        return tuple(named)

    def revoke_key(self, key_id: str) -> bool:
        """Revoke the live key with this id; returns whether one was revoked.

        Raises
        ------
        StoreError
            If the store cannot be opened.
        """
        with self._lock:
            db = self._database()
            if db is None:
                assert self._file is not None
                records = self._file.records()
                kept = [r for r in records if r.principal.key_id != key_id]
                if len(kept) == len(records):
                    return False
                self._file.write(kept)
                return True
            revoked = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
            return (
                db.execute(
                    "UPDATE api_keys SET revoked = ? WHERE id = ? AND revoked IS NULL",
                    (revoked, key_id),
                )
                > 0
            )


def _row(r: _Record) -> tuple[str, str, str, str, str, str]:
    return (
        r.sha256,
        r.principal.key_id,
        r.principal.role.value,
        json.dumps(list(r.principal.grants)),
        r.principal.name,
        r.created,
    )


def _record(row: tuple[Any, ...]) -> _Record:
    digest, ident, role, scopes, name, created = row
    return _Record(
        str(digest),
        principal_of(str(ident), Role(role), json.loads(scopes), str(name)),
        created,
    )


def _count(cur: Any) -> int:
    cur.execute("SELECT COUNT(*) FROM api_keys")
    return int(cur.fetchone()[0])


class _KeyFile:
    """The JSON key file of earlier versions: read, written atomically, retired."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def read(self) -> tuple[tuple[int, int, int], list[_Record]] | None:
        """``(stamp, records)`` of the file, or ``None`` if there is none.

        Raises
        ------
        StoreError
            If the file is there but cannot be read.
        """
        try:
            info = self.path.stat()
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StoreError(f"{self.path}: cannot read the API key file ({exc})") from None
        try:
            data = json.loads(text)
            records = [
                _Record(
                    item["sha256"],
                    principal_of(
                        item["id"],
                        Role(item["role"]),
                        item["scopes"],
                        item.get("name", ""),
                    ),
                    item.get("created", ""),
                )
                for item in data.get("keys", [])
            ]
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise StoreError(f"{self.path}: cannot read the API key file ({exc})") from None
        return (info.st_ino, info.st_mtime_ns, info.st_size), records

    def records(self) -> list[_Record]:
        """The file's records (none if there is no file).

        Raises
        ------
        StoreError
            If the file is there but cannot be read.
        """
        found = self.read()
        return found[1] if found is not None else []

    def retire(self, stamp: tuple[int, int, int]) -> None:
        """Rename the file ``<name>.imported`` if it is still the one read (a file written
        again in between is imported next time); another process may have done it."""
        try:
            info = self.path.stat()
            if (info.st_ino, info.st_mtime_ns, info.st_size) == stamp:
                os.replace(self.path, self.path.with_name(self.path.name + IMPORTED_SUFFIX))
        except FileNotFoundError:
            pass

    def write(self, records: list[_Record]) -> None:
        """Replace the file's records, atomically (temporary file + ``os.replace``)."""
        data = {
            "version": 1,
            "keys": [
                {
                    "id": r.principal.key_id,
                    "sha256": r.sha256,
                    "role": r.principal.role.value,
                    "scopes": list(r.principal.grants),
                    "name": r.principal.name,
                    "created": r.created,
                }
                for r in records
            ],
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=2)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, self.path)
