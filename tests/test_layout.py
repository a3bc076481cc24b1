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
    readme = (ROOT / "assets" / "README.md").read_text()
    files = [p for p in (ROOT / "assets").rglob("*") if p.is_file() and p.name != "README.md"]
    assert files
    for path in files:
        # attributed in assets/README.md, or in the README.md of the file's own directory
        local = path.parent / "README.md"
        local_text = local.read_text() if local.is_file() and path.parent != ROOT / "assets" else ""
        assert path.name in readme or path.name in local_text, f"{path.name} is not attributed"
        for row in local_text.splitlines():
            if row.startswith("| `"):
                assert "GPL" not in row.rstrip(" |").rsplit("|", 1)[-1], row
    rows = [line for line in readme.splitlines() if line.startswith("| `")]
    assert len(rows) >= 10
    for row in rows:
        licence = row.rstrip(" |").rsplit("|", 1)[-1]
        assert "GPL" not in licence, row
