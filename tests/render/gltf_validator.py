"""The Khronos glTF-Validator run through Node, once per batch of files."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "tests" / "tools" / "validate_gltf.mjs"


def validate_files(paths: list[Path]) -> list[dict[str, Any]]:
    """One report per file: ``file``, ``errors``, ``warnings``, ``messages`` (errors and
    warnings, at most 50)."""
    node = shutil.which("node")
    assert node is not None, "node is needed for the glTF-Validator (make .venv/.installed-dev)"
    assert (ROOT / "node_modules" / "gltf-validator").is_dir(), (
        "node_modules/gltf-validator is missing: run make .venv/.installed-dev"
    )
    reports: list[dict[str, Any]] = []
    # a long argument list is split so that the command line stays within limits
    for start in range(0, len(paths), 500):
        batch = [str(p) for p in paths[start : start + 500]]
        done = subprocess.run(
            [node, str(SCRIPT), *batch], capture_output=True, text=True, cwd=ROOT, check=False
        )
        assert done.returncode == 0, done.stderr
        reports.extend(json.loads(line) for line in done.stdout.splitlines() if line.strip())
    assert len(reports) == len(paths)
    return reports


def assert_valid(paths: list[Path]) -> None:
    """Fail naming every file with a validator error."""
    bad = [r for r in validate_files(paths) if r["errors"]]
    assert not bad, json.dumps(bad[:5], indent=1)
