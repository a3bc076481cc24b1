"""Drills the ``twin run`` command knows: one module per model, found by name.

A drill module defines::

    HELP: str                                         # one line for ``twin run --help``
    def add_arguments(parser: argparse.ArgumentParser) -> None
    def run(args: argparse.Namespace) -> dict[str, Any]   # the result printed by the CLI

and raises :class:`cim.errors.TwinError` (exit 1) or ``ValueError`` (exit 2) for bad input.
Modules are discovered, so adding a drill touches no shared file.
"""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType


def drill_modules() -> dict[str, ModuleType]:
    """Every drill module under this package, by name."""
    found: dict[str, ModuleType] = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        if info.name.startswith("_"):
            continue
        found[info.name] = importlib.import_module(f"{__name__}.{info.name}")
    return found
