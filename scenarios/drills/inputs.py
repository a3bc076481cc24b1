"""Named inputs of drills: the server's catalogue of networks and venues, and the name types.

A client never names a file: a drill's spec names an input of the catalogue
(``data_dir/FOLDER/NAME.SUFFIX``, the project's ``assets/`` by default), and ``prepare``
resolves the name to its path, refusing names that are not there.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, Field, Strict, StringConstraints, ValidationError

from cim.errors import NotFoundError
from scenarios.drills.base import DrillRequestError

#: A name of the catalogue, a site or a venue: lower case, digits, ``_`` and ``-``.
NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"
_NAME = re.compile(NAME_PATTERN)

#: A catalogue, site or venue name.
Name = Annotated[str, StringConstraints(pattern=NAME_PATTERN)]
#: A CIM object code (digits for CIM objects; a file's own id where the drill keeps them).
Code = Annotated[str, StringConstraints(pattern=r"^[0-9A-Za-z][0-9A-Za-z_.:@|/#-]{0,127}$")]
#: A run id (``closures_from``).
RunId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")]
#: A count or an index: a JSON whole number only (``1.5``, ``true``, ``"10"`` and ``1e9`` are
#: refused, naming the field, where a lax int would take ``true`` as 1 and ``"10"`` as 10).
Count = Annotated[int, Strict()]
#: A random seed: a whole number 0..2**32-1 (numpy's generators and UXsim take it as is).
Seed = Annotated[int, Strict(), Field(ge=0, le=2**32 - 1, description="random seed, 0..2^32-1")]

M = TypeVar("M", bound=BaseModel)


def catalogue(data_dir: Path, folder: str, suffix: str) -> dict[str, Path]:
    """Named inputs under ``data_dir/folder``.

    Parameters
    ----------
    data_dir : the catalogue's root (``assets/``)
    folder : its folder (``traffic``, ``swmm``, ``crowd``)
    suffix : how the files end (``_nodes.csv``, ``.inp``)

    Returns
    -------
    dict
        ``name -> path`` of the files ending in ``suffix`` whose name is a valid name.
    """
    root = data_dir / folder
    if not root.is_dir():
        return {}
    return {
        p.name[: -len(suffix)]: p
        for p in sorted(root.iterdir())
        if p.name.endswith(suffix) and _NAME.match(p.name[: -len(suffix)])
    }


def named_input(
    data_dir: Path, folder: str, suffixes: tuple[str, ...], name: str, field: str
) -> Path:
    """The path of catalogue input ``name`` (the first of ``suffixes`` that exists).

    Raises
    ------
    NotFoundError
        If the catalogue holds no such input (the message names ``field`` and the known ones).
    """
    found: dict[str, Path] = {}
    for suffix in reversed(suffixes):
        found.update(catalogue(data_dir, folder, suffix))
    if name not in found:
        known = ", ".join(sorted(found)) or "none"
        raise NotFoundError(f"{field}: no {folder} input {name!r}; known: {known}")
    return found[name]


def revalidate(spec: M, **changes: Any) -> M:
    """``spec`` with ``changes``, validated again (what ``prepare`` resolves obeys the
    model's bounds as a client's values do).

    Raises
    ------
    DrillRequestError
        If the changed spec breaks a bound (naming the field).
    """
    try:
        return type(spec).model_validate({**spec.model_dump(), **changes})
    except ValidationError as exc:
        raise DrillRequestError(validation_message(exc)) from None


def validation_message(exc: ValidationError) -> str:
    """One line per error of a pydantic validation, each naming its field
    (``closures[0].t_start_s: Input should be greater than or equal to 0``)."""
    lines = []
    for error in exc.errors(include_url=False):
        where = ""
        for part in error["loc"]:
            where += f"[{part}]" if isinstance(part, int) else f".{part}" if where else str(part)
        lines.append(f"{where or 'body'}: {error['msg']}")
    return "; ".join(lines)
