"""Cached, read-only views of a site for the API: spatial index, tree and scope.

A :class:`SiteView` is built once per ``(site, version)`` (and, for a pilot, per scope) and
reused until an import bumps the site's version; the store stays the single source of truth.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from cim.model import CimObject, SiteInfo
from cim.spatial import SiteIndex
from cim.store import Store


@dataclass(frozen=True)
class SiteView:
    """The objects of one site a caller may see.

    Attributes
    ----------
    site : the site as stored when the view was built
    index : spatial index over the visible objects
    by_code : visible objects by code
    children : visible child codes of each visible code, sorted
    roots : codes of visible objects whose parent is absent or not visible, sorted
    """

    site: SiteInfo
    index: SiteIndex
    by_code: dict[str, CimObject]
    children: dict[str, list[str]]
    roots: list[str]

    @classmethod
    def build(cls, site: SiteInfo, objects: Sequence[CimObject]) -> SiteView:
        """A view over ``objects`` of ``site``."""
        by_code = {o.code: o for o in objects}
        children: dict[str, list[str]] = {}
        roots = []
        for obj in objects:
            if obj.parent is not None and obj.parent in by_code:
                children.setdefault(obj.parent, []).append(obj.code)
            else:
                roots.append(obj.code)
        for codes in children.values():
            codes.sort()
        return cls(site, SiteIndex.build(objects), by_code, children, sorted(roots))

    def scoped(self, prefixes: Sequence[str]) -> SiteView:
        """The part of this view whose codes start with one of ``prefixes``."""
        codes = self.index.codes
        keep = np.zeros(len(codes), dtype=bool)
        for prefix in prefixes:
            keep |= np.char.startswith(codes, prefix)
        return SiteView.build(
            self.site, [self.index.objects[i] for i in np.flatnonzero(keep).tolist()]
        )

    @property
    def empty(self) -> bool:
        """Whether no object is visible."""
        return not self.by_code

    def kind_counts(self, *, admin: bool) -> dict[str, int]:
        """Visible objects per kind: source objects (``admin=False``) or grid and admin
        objects (``admin=True``)."""
        counts: dict[str, int] = {}
        for obj in self.by_code.values():
            if (obj.source == "") == admin:
                counts[obj.kind] = counts.get(obj.kind, 0) + 1
        return dict(sorted(counts.items()))

    def bbox(self) -> tuple[float, float, float, float, float, float] | None:
        """Extent of the visible source objects, metres, or ``None``."""
        boxes = self.index.boxes[[o.source != "" for o in self.index.objects]]
        boxes = boxes[np.isfinite(boxes).all(axis=1)]
        if not len(boxes):
            return None
        lo, hi = boxes[:, :3].min(axis=0), boxes[:, 3:].max(axis=0)
        return (float(lo[0]), float(lo[1]), float(lo[2]), float(hi[0]), float(hi[1]), float(hi[2]))


class SiteViews:
    """An LRU cache of site views keyed by ``(site, version, scope)``.

    Parameters
    ----------
    store : where the objects come from
    size : how many views to keep
    """

    def __init__(self, store: Store, size: int = 32) -> None:
        if size < 1:
            raise ValueError(f"size(={size}) must be >= 1")
        self.store = store
        self.size = size
        self._lock = threading.Lock()
        self._views: OrderedDict[tuple[str, int, tuple[str, ...] | None], SiteView] = OrderedDict()

    def view(self, site: str, scopes: Sequence[str] | None = None) -> SiteView:
        """The current view of ``site``, restricted to ``scopes`` (code prefixes) if given.

        Raises
        ------
        NotFoundError
            If there is no such site.
        """
        info = self.store.site(site)
        scope_key = tuple(sorted(scopes)) if scopes is not None else None
        key = (info.name, info.version, scope_key)
        with self._lock:
            found = self._views.get(key)
            if found is not None:
                self._views.move_to_end(key)
                return found
        if scope_key is None:
            built = SiteView.build(info, self.store.all_objects(site))
        else:
            built = self.view(site).scoped(scope_key)
        with self._lock:
            # views of older versions of this site are stale: drop them
            for stale in [k for k in self._views if k[0] == info.name and k[1] != info.version]:
                del self._views[stale]
            self._views[key] = built
            while len(self._views) > self.size:
                self._views.popitem(last=False)
        return built
