"""Who may render now: off-screen snapshots are one at a time, so they are rationed.

VTK's render windows are not meant to be driven from several threads at once, so one
snapshot renders at a time. A request that had to wait for that one slot would hold a thread
of the server's pool while it waits; enough of them and ``/health`` and the tiles wait too.
So :class:`RenderGate` admits a render only when it will not pile up:

- a key has at most ``per_key`` renders in progress (rendering or waiting,
  ``TWIN_RENDERS_PER_KEY``);
- at most ``queue`` renders wait behind the one rendering (``TWIN_RENDER_QUEUE``), each for
  at most ``wait_s`` seconds;

and refuses the others at once with :class:`~api.errors.BusyError` (429 and
``Retry-After``). At most ``queue + 1`` of the pool's threads are ever inside the renderer.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

from api.errors import BusyError

#: The settings the gate's refusals name.
RENDERS_PER_KEY_ENV = "TWIN_RENDERS_PER_KEY"
RENDER_QUEUE_ENV = "TWIN_RENDER_QUEUE"
#: What a refused client is told to wait, s.
RETRY_AFTER_S = 2


class RenderGate:
    """Admits renders: ``per_key`` in progress per key, one rendering, ``queue`` waiting.

    Parameters
    ----------
    per_key : renders one key may have in progress at once (>= 1)
    queue : renders that may wait behind the one rendering (>= 0)
    wait_s : longest one waits for its turn before it is refused, s
    """

    def __init__(self, per_key: int, queue: int, wait_s: float = 30.0) -> None:
        if per_key < 1 or queue < 0 or not wait_s > 0:
            raise ValueError(f"per_key(={per_key}) >= 1, queue(={queue}) >= 0, wait_s > 0")
        self.per_key = per_key
        self.queue = queue
        self.wait_s = wait_s
        self._lock = threading.Lock()
        self._render = threading.Lock()
        self._by_key: Counter[str] = Counter()
        self._inside = 0

    @property
    def inside(self) -> int:
        """Renders in progress now (rendering or waiting)."""
        return self._inside

    @contextmanager
    def admit(self, key: str) -> Iterator[None]:
        """Hold the renderer for one render by ``key``.

        Raises
        ------
        BusyError
            At once, if the key has ``per_key`` renders in progress or ``queue`` renders
            already wait; after ``wait_s``, if the turn did not come.
        """
        with self._lock:
            mine = self._by_key[key]
            if mine >= self.per_key:
                raise BusyError(
                    RENDERS_PER_KEY_ENV,
                    self.per_key,
                    f"this key has {mine} snapshots in progress, the most it may: wait for "
                    "one to finish",
                    RETRY_AFTER_S,
                )
            if self._inside > self.queue:
                raise BusyError(
                    RENDER_QUEUE_ENV,
                    self.queue,
                    f"the renderer is busy ({self._inside} snapshots rendering or waiting): "
                    "try again shortly",
                    RETRY_AFTER_S,
                )
            self._by_key[key] += 1
            self._inside += 1
        try:
            if not self._render.acquire(timeout=self.wait_s):
                raise BusyError(
                    RENDER_QUEUE_ENV,
                    self.queue,
                    f"no turn at the renderer within {self.wait_s:g} s: try again shortly",
                    RETRY_AFTER_S,
                )
            try:
                yield
            finally:
                self._render.release()
        finally:
            with self._lock:
                self._by_key[key] -= 1
                if not self._by_key[key]:
                    del self._by_key[key]
                self._inside -= 1
