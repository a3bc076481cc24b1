"""One progress bar for every long CLI command: tqdm on stderr, silent under ``--json``."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from tqdm import tqdm

Progress = Callable[[float, str], None]


@contextmanager
def progress_bar(quiet: bool, total: int = 100) -> Iterator[Progress]:
    """A ``(fraction, message)`` callback moving a bar that is closed on exit."""
    with tqdm(total=total, unit="%", disable=quiet, bar_format="{l_bar}{bar}| {elapsed}") as bar:

        def progress(fraction: float, message: str) -> None:
            bar.set_description(message[:40])
            bar.update(int(fraction * total) - bar.n)

        yield progress
