"""Built scenes on disk, bounded in bytes: the least recently used go first.

A GLB of a site or building is built once and kept under ``<cache>/glb/SITE/vVERSION/``
(see :mod:`api.routes.scenes`). Every distinct root, exploded gap and site version is a file
of its own, so without a bound a client asking for many of them fills the disk.
:class:`SceneCache` keeps their total under ``max_bytes`` (``TWIN_SCENE_CACHE_BYTES``): a
file read is touched (its mtime is its last use), and a write that takes the total past the
bound removes the least recently used files until it fits. The total is counted again from
the folder before anything is removed, so API processes sharing the folder keep one bound.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path


class SceneCache:
    """Files under ``root``, at most ``max_bytes`` in all.

    Parameters
    ----------
    root : the folder (created on the first write)
    max_bytes : the bound of the files' total size, bytes (a file larger than it is
        served and never kept)
    """

    def __init__(self, root: Path, max_bytes: int) -> None:
        if max_bytes < 1:
            raise ValueError(f"max_bytes(={max_bytes}) must be >= 1")
        self.root = root
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._total: int | None = None

    def get(self, path: Path, build: Callable[[], bytes]) -> bytes:
        """The file at ``path`` (under :attr:`root`), made by ``build()`` first when missing.

        Raises
        ------
        ValueError
            If ``path`` is not under the cache's root.
        """
        if not path.is_relative_to(self.root):
            raise ValueError(f"{path} is not under the scene cache {self.root}")
        if path.is_file():
            # removed by another process meanwhile: built again, or served as read
            with contextlib.suppress(FileNotFoundError):
                data = path.read_bytes()
                with contextlib.suppress(FileNotFoundError):
                    os.utime(path)
                return data
        data = build()
        if len(data) <= self.max_bytes:
            self._put(path, data)
        return data

    def total_bytes(self) -> int:
        """The size of the files under the root now, bytes."""
        return sum(size for _, size, _ in self._files())

    def _put(self, path: Path, data: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".part")
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
        with self._lock:
            self._total = (self.total_bytes() if self._total is None else self._total) + len(data)
            if self._total > self.max_bytes:
                self._total = self._evict()

    def _files(self) -> list[tuple[float, int, Path]]:
        """``(last use, size, path)`` of every kept file."""
        found = []
        for path in self.root.rglob("*"):
            if path.suffix == ".part":
                continue
            try:
                stat = path.stat()
            except FileNotFoundError:
                continue
            if path.is_file():
                found.append((stat.st_mtime, stat.st_size, path))
        return found

    def _evict(self) -> int:
        """Remove the least recently used files until the rest fit; their total."""
        files = sorted(self._files(), key=lambda f: f[0])
        total = sum(size for _, size, _ in files)
        for _, size, path in files:
            if total <= self.max_bytes:
                break
            path.unlink(missing_ok=True)
            total -= size
        return total
