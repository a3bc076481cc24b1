"""Drills the ``twin run`` command knows: one module per model, found by name.

A drill module defines::

    HELP: str                                         # one line for ``twin run --help``
    def add_arguments(parser: argparse.ArgumentParser) -> None
    def run(args: argparse.Namespace) -> dict[str, Any]   # the result printed by the CLI

and raises :class:`cim.errors.TwinError` (exit 1) or ``ValueError`` (exit 2) for bad input.
Modules are discovered, so adding a drill touches no shared file.

A drill of :data:`scenarios.drills.DRILLS` also runs from the body ``POST /drills/NAME``
takes (``twin run NAME --spec FILE.json``, :func:`run_spec`); its flags are shorthands.
"""

from __future__ import annotations

import importlib
import pkgutil
import tempfile
from pathlib import Path
from types import ModuleType
from typing import Any

import orjson
from pydantic import ValidationError


def drill_modules() -> dict[str, ModuleType]:
    """Every drill module under this package, by name."""
    found: dict[str, ModuleType] = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        if info.name.startswith("_"):
            continue
        found[info.name] = importlib.import_module(f"{__name__}.{info.name}")
    return found


def run_spec(
    name: str, spec_path: Path, store_url: str, out_dir: Path | None, quiet: bool
) -> dict[str, Any]:
    """Run drill ``name`` from a JSON body, as ``POST /drills/NAME`` would: validate it with
    the drill's model, prepare it against the store, run it into ``out_dir``.

    Parameters
    ----------
    name : the drill (``traffic``, ``flood``, ``crowd``, ``evacuation``)
    spec_path : the JSON body
    store_url : the CIM store (SQLite path or ``postgresql://`` URL)
    out_dir : the run's folder (files it writes); ``None``: a new temporary folder
    quiet : no progress bar

    Returns
    -------
    dict
        ``{"summary", ...detail, "out_dir"}``.

    Raises
    ------
    ValueError
        If the file is not JSON or the body does not validate (naming the field).
    cim.errors.TwinError
        If the body contradicts the store or the catalogue (``DrillRequestError``,
        ``NotFoundError``).
    """
    from api.progress import progress_bar
    from api.settings import DATA_DIR, Settings
    from cim.store import open_store
    from scenarios.drills import drill
    from scenarios.drills.base import PrepareContext, RunContext
    from scenarios.drills.inputs import validation_message

    found = drill(name)
    try:
        body = orjson.loads(spec_path.read_bytes())
    except OSError as exc:
        raise ValueError(f"--spec {spec_path}: cannot read it ({exc.strerror})") from None
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"--spec {spec_path}: not JSON ({exc})") from None
    try:
        spec = found.spec.model_validate(body)
    except ValidationError as exc:
        raise ValueError(f"--spec {spec_path}: {validation_message(exc)}") from None
    cache_dir = Settings(store_url=store_url).cache_path
    if out_dir is None:
        out_dir = Path(tempfile.mkdtemp(prefix=f"twin-{name}-"))
    out_dir.mkdir(parents=True, exist_ok=True)
    store = open_store(store_url)
    try:
        context = PrepareContext(store, DATA_DIR, cache_dir, str(store_url))
        spec = found.prepare(spec, context)
        with progress_bar(quiet) as progress:
            result = found.run(spec, RunContext(store, DATA_DIR, cache_dir, out_dir, progress))
    finally:
        store.close()
    return {"summary": result.summary, **result.detail, "out_dir": str(out_dir)}
