"""API keys: roles, principals and the hashed key file.

The key file is JSON next to the store (``<store path>.keys.json``) and holds, per key, only
its sha256 hash, role, scopes, name and creation time; the plaintext is shown once by
:meth:`KeyStore.create_key`. Writes are atomic (temporary file + ``os.replace``) and the file
is re-read when it changes, so keys created by ``twin keys create`` work without a restart.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import os
import re
import secrets
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from api.settings import BootstrapKey
from cim.errors import StoreError

KEY_PREFIX = "twk_"
_SCOPE = re.compile(r"[0-9A-Za-z]{1,32}")


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
    """

    key_id: str
    role: Role
    scopes: tuple[str, ...] = ()
    name: str = ""

    @property
    def scoped(self) -> bool:
        """Whether this principal sees only part of the CIM."""
        return self.role is Role.PILOT

    def sees(self, code: str) -> bool:
        """Whether an object code is within this principal's scope."""
        return not self.scoped or code.startswith(self.scopes)


class UnknownKeyError(Exception):
    """The presented key is not known."""


def hash_key(key: str) -> str:
    """The hex sha256 of a key, as kept in the key file."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def validate_grant(role: str, scopes: Iterable[str]) -> tuple[Role, tuple[str, ...]]:
    """Check a role and its scopes.

    Raises
    ------
    ValueError
        If the role is unknown, a pilot has no scope, another role has one, or a scope is
        not a code prefix (1 to 32 letters and digits).
    """
    try:
        parsed = Role(role)
    except ValueError:
        allowed = ", ".join(r.value for r in Role)
        raise ValueError(f"role(={role!r}) must be one of {allowed}") from None
    cleaned = tuple(dict.fromkeys(s.strip() for s in scopes))
    for scope in cleaned:
        if not _SCOPE.fullmatch(scope):
            raise ValueError(f"scope(={scope!r}) must be a code prefix of letters and digits")
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


class KeyStore:
    """The API keys of one deployment.

    Parameters
    ----------
    path : the JSON key file (created on the first :meth:`create_key`)
    bootstrap : keys held in memory only (from ``TWIN_API_KEYS``)

    Raises
    ------
    ValueError
        If a bootstrap key has a bad role or scope.
    """

    def __init__(self, path: str | Path, bootstrap: Iterable[BootstrapKey] = ()) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._stamp: tuple[int, int] | None = None
        self._records: list[_Record] = []
        self._bootstrap = []
        for key in bootstrap:
            role, scopes = validate_grant(key.role, key.scopes)
            digest = hash_key(key.key)
            self._bootstrap.append(
                _Record(digest, Principal(digest[:12], role, scopes, "bootstrap"), "")
            )

    # -- reading ------------------------------------------------------------------------------
    def _load(self) -> list[_Record]:
        """The file's records, re-read when its modification time or size changed."""
        try:
            info = self.path.stat()
        except FileNotFoundError:
            self._stamp, self._records = None, []
            return self._records
        stamp = (info.st_mtime_ns, info.st_size)
        if stamp != self._stamp:
            try:
                data = json.loads(self.path.read_text(encoding="utf-8"))
                records = [
                    _Record(
                        item["sha256"],
                        Principal(
                            item["id"],
                            Role(item["role"]),
                            tuple(item["scopes"]),
                            item.get("name", ""),
                        ),
                        item.get("created", ""),
                    )
                    for item in data.get("keys", [])
                ]
            except (OSError, ValueError, KeyError, TypeError) as exc:
                raise StoreError(f"{self.path}: cannot read the API key file ({exc})") from None
            self._records, self._stamp = records, stamp
        return self._records

    def authenticate(self, key: str) -> Principal:
        """The principal a plaintext key stands for.

        Every stored hash is compared in constant time, so timing says nothing about how
        close a guess came.

        Raises
        ------
        UnknownKeyError
            If no stored key matches.
        """
        digest = hash_key(key)
        with self._lock:
            records = [*self._bootstrap, *self._load()]
        found: Principal | None = None
        for record in records:
            if hmac.compare_digest(digest, record.sha256) and found is None:
                found = record.principal
        if found is None:
            raise UnknownKeyError("unknown API key")
        return found

    def list_keys(self) -> list[dict[str, Any]]:
        """The stored keys without their hashes: id, name, role, scopes, created."""
        with self._lock:
            records = list(self._load())
        return [
            {
                "id": r.principal.key_id,
                "name": r.principal.name,
                "role": r.principal.role.value,
                "scopes": list(r.principal.scopes),
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
        """
        parsed, cleaned = validate_grant(role, scopes)
        key = KEY_PREFIX + secrets.token_urlsafe(32)
        digest = hash_key(key)
        created = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        with self._lock:
            records = [
                *self._load(),
                _Record(digest, Principal(digest[:12], parsed, cleaned, name), created),
            ]
            self._write(records)
        return key

    def revoke_key(self, key_id: str) -> bool:
        """Remove the stored key with this id; returns whether one was removed."""
        with self._lock:
            records = self._load()
            kept = [r for r in records if r.principal.key_id != key_id]
            if len(kept) == len(records):
                return False
            self._write(kept)
        return True

    def _write(self, records: list[_Record]) -> None:
        data = {
            "version": 1,
            "keys": [
                {
                    "id": r.principal.key_id,
                    "sha256": r.sha256,
                    "role": r.principal.role.value,
                    "scopes": list(r.principal.scopes),
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
        self._stamp = None
