"""Loading the versioned code tables shipped in ``cim/codes/tables/``."""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Any

import orjson

DEFAULT_COMPONENT_TABLE = "gbt30428.2-2013"
DEFAULT_UNIT_TABLE = "units-2026.1"


@cache
def load_table(name: str) -> dict[str, Any]:
    """The code table ``name`` (file stem in ``tables/``).

    Raises
    ------
    KeyError
        If no table of that name is shipped.
    """
    try:
        raw = resources.files("cim.codes").joinpath("tables", f"{name}.json").read_bytes()
    except FileNotFoundError:
        raise KeyError(f"no code table named {name!r}") from None
    table: dict[str, Any] = orjson.loads(raw)
    return table


def unit_class(kind: str, table: str = DEFAULT_UNIT_TABLE) -> str:
    """The two-digit unit class of an object kind (``"99"`` for unlisted kinds)."""
    classes: dict[str, str] = load_table(table)["classes"]
    return classes.get(kind, classes["*"])


def is_site_level(kind: str, table: str = DEFAULT_UNIT_TABLE) -> bool:
    """Whether objects of ``kind`` hang under the site root (terrain), not a grid cell."""
    return kind in load_table(table)["site_level"]


def component_class(
    kind: str, attributes: dict[str, Any], table: str = DEFAULT_COMPONENT_TABLE
) -> str | None:
    """The four-digit component class (major + minor) of an object, or ``None``.

    An explicit ``component_class`` attribute wins; otherwise the table maps CityJSON
    types (``CityFurniture``...).

    Raises
    ------
    ValueError
        If the attribute names a class the table does not hold.
    """
    data = load_table(table)
    explicit = attributes.get("component_class")
    if explicit is not None:
        code = str(explicit)
        if code not in data["minor"]:
            raise ValueError(f"component_class(={code!r}) is not in table {table}")
        return code
    mapped: str | None = data["cityjson_types"].get(kind)
    return mapped
