"""Tiles in memory: a built tileset's files are immutable, so they are read once.

The cache keeps, per ``(site, tileset version, path)``, the bytes, their ETag and (on first
request from a client that accepts it) their gzip encoding, within a byte budget (least
recently used out first). The site's tileset version is looked up at most once per
``version_ttl_s`` (a re-import shows within that time); a version change empties nothing
by force: old entries age out.
"""

from __future__ import annotations

import gzip
import hashlib
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


@dataclass
class CachedFile:
    """One tile file ready to send."""

    data: bytes
    etag: str
    gzipped: bytes | None = None

    def gzip_body(self) -> bytes:
        """The gzip encoding, made once."""
        if self.gzipped is None:
            self.gzipped = gzip.compress(self.data, compresslevel=5)
        return self.gzipped


class TileCache:
    """Tileset versions and tile bytes, shared by the requests of one application.

    Parameters
    ----------
    budget_bytes : memory for file bytes (plain and gzipped)
    version_ttl_s : how long a site's tileset version is trusted before it is looked up again
    """

    def __init__(self, budget_bytes: int = 256 * 2**20, version_ttl_s: float = 2.0) -> None:
        self._files: OrderedDict[tuple[str, str, str], CachedFile] = OrderedDict()
        self._versions: dict[str, tuple[float, str, Path]] = {}
        self._used = 0
        self._budget = budget_bytes
        self._ttl = version_ttl_s
        self._lock = threading.Lock()

    def version(self, site: str, lookup: Callable[[], tuple[str, Path]]) -> tuple[str, Path]:
        """The site's tileset version and directory, from ``lookup()`` when stale."""
        now = time.monotonic()
        with self._lock:
            known = self._versions.get(site)
        if known is not None and now - known[0] < self._ttl:
            return known[1], known[2]
        version, root = lookup()
        with self._lock:
            self._versions[site] = (now, version, root)
        return version, root

    def file(
        self, site: str, version: str, relative: str, resolve: Callable[[], Path]
    ) -> CachedFile:
        """The cached file, read through ``resolve()`` (which refuses bad paths) when absent."""
        key = (site, version, relative)
        with self._lock:
            found = self._files.get(key)
            if found is not None:
                self._files.move_to_end(key)
                return found
        data = resolve().read_bytes()
        tag = hashlib.blake2b(f"{site}/{version}/{relative}".encode(), digest_size=12).hexdigest()
        entry = CachedFile(data, f'"{tag}"')
        with self._lock:
            if key not in self._files:
                self._files[key] = entry
                self._used += len(data)
                while self._used > self._budget and len(self._files) > 1:
                    _, old = self._files.popitem(last=False)
                    self._used -= len(old.data) + len(old.gzipped or b"")
            return self._files[key]

    def note_gzip(self, entry: CachedFile) -> bytes:
        """``entry``'s gzip body, counted against the budget when first made."""
        fresh = entry.gzipped is None
        body = entry.gzip_body()
        if fresh:
            with self._lock:
                self._used += len(body)
        return body
