"""The section tokenizer of EPA SWMM 5 input files (``.inp``), shared by the CIM loader
(:mod:`cim.loaders.swmm`) and the flood model's reader (:mod:`scenarios.flood.swmm_inp`).

A file is ``[SECTION]`` headers followed by whitespace-separated rows; ``;`` starts a comment
and double quotes group a token holding spaces. Rows keep their 1-based line numbers so that
every later complaint can name the line.
"""

from __future__ import annotations

import shlex
from collections import defaultdict
from pathlib import Path

from cim.errors import SourceError

#: One data row: its line number in the file and its tokens.
Line = tuple[int, list[str]]


def read_sections(path: Path) -> dict[str, list[Line]]:
    """The rows of every section of a SWMM input file, by upper-case section name.

    Raises
    ------
    SourceError
        If the file cannot be read, has data before its first section, or has no section.
    """
    sections: dict[str, list[Line]] = defaultdict(list)
    current: str | None = None
    try:
        text = path.read_text(encoding="utf-8-sig", errors="replace")
    except OSError as exc:
        raise SourceError(path, f"cannot read: {exc.strerror}") from None
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.split(";", 1)[0].strip()
        if not line:
            continue
        if line.startswith("["):
            current = line.strip("[] \t").upper()
            sections.setdefault(current, [])
            continue
        if current is None:
            raise SourceError(path, f"line {lineno}: data before the first [SECTION]")
        if '"' in line or "'" in line or "\\" in line:
            try:
                tokens = shlex.split(line, posix=True)
            except ValueError:
                tokens = line.split()
        else:
            tokens = line.split()  # what shlex gives for a line without quotes, ~50x faster
        sections[current].append((lineno, tokens))
    if not sections:
        raise SourceError(path, "no [SECTION] found: not a SWMM input file")
    return sections
