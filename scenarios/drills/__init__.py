"""Drills by name: one typed spec, check and run per drill (see :mod:`scenarios.drills.base`).

::

    from scenarios.drills import drill

    traffic = drill("traffic")
    spec = traffic.prepare(traffic.spec.model_validate(body), prepare_context)
    result = traffic.run(spec, run_context)
"""

from __future__ import annotations

from typing import Any

from cim.errors import NotFoundError
from scenarios.drills import crowd, evacuation, flood, traffic
from scenarios.drills.base import Drill

#: Every drill, by name.
DRILLS: dict[str, Drill[Any]] = {
    d.name: d for d in (traffic.DRILL, flood.DRILL, crowd.DRILL, evacuation.DRILL)
}


def drill(name: str) -> Drill[Any]:
    """The drill called ``name``.

    Raises
    ------
    NotFoundError
        If there is no such drill (the message names the known ones).
    """
    try:
        return DRILLS[name]
    except KeyError:
        raise NotFoundError(f"no drill {name!r}; known: {', '.join(sorted(DRILLS))}") from None


__all__ = ["DRILLS", "Drill", "drill"]
