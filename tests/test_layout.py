"""The five packages import from this repository (their PyPI namesakes are other projects)."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("name", ["cim", "twin", "scenarios", "render", "api"])
def test_package_imports_from_this_repository(name: str) -> None:
    module = importlib.import_module(name)
    assert module.__file__ is not None
    assert Path(module.__file__).resolve().parent == ROOT / name


def test_assets_are_attributed_and_free_of_gpl() -> None:
    # assets/README.md, or the README.md of the file's own folder (assets/<dir>/README.md)
    readme = "\n".join(p.read_text() for p in sorted((ROOT / "assets").rglob("README.md")))
    files = [p for p in (ROOT / "assets").rglob("*") if p.is_file() and p.name != "README.md"]
    assert files
    for path in files:
        assert path.name in readme, f"{path.name} is not attributed in an assets README.md"
    rows = [line for line in readme.splitlines() if line.startswith("| `")]
    assert len(rows) >= 10
    for row in rows:
        licence = row.rstrip(" |").rsplit("|", 1)[-1]
        assert "GPL" not in licence, row
