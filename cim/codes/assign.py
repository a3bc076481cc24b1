"""Allocating codes so that they never change: existing codes are kept, new ones take the
next free sequence number under their prefix."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable


class SequenceAllocator:
    """Next free numbers under code prefixes, seeded with the codes already in use.

    Parameters
    ----------
    existing : codes already allocated in the site
    """

    def __init__(self, existing: Iterable[str]) -> None:
        self._existing = list(existing)
        self._next: dict[tuple[str, int], int] = {}
        self._by_shape: dict[int, dict[str, int]] = defaultdict(dict)
        self._indexed: set[int] = set()

    def _index(self, prefix_len: int, digits: int) -> dict[str, int]:
        key = prefix_len * 100 + digits
        table = self._by_shape[key]
        if key not in self._indexed:
            self._indexed.add(key)
            total = prefix_len + digits
            for code in self._existing:
                tail = code[prefix_len:]
                if len(code) == total and tail.isdigit():
                    prefix = code[:prefix_len]
                    table[prefix] = max(table.get(prefix, 0), int(tail))
        return table

    def take(self, prefix: str, digits: int) -> str:
        """The next code ``prefix`` + a ``digits``-digit sequence number.

        Raises
        ------
        ValueError
            If all numbers under ``prefix`` are used.
        """
        table = self._index(len(prefix), digits)
        number = table.get(prefix, 0) + 1
        if number >= 10**digits:
            raise ValueError(f"no free {digits}-digit number left under {prefix!r}")
        table[prefix] = number
        return f"{prefix}{number:0{digits}d}"
