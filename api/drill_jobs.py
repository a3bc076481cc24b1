"""Drills as API jobs: a request body becomes a validated spec and the work that runs it.

A client never names a file: networks and venues come from the server's data catalogue
(``Settings.data_dir``, the project's ``assets/`` by default) by name, and everything else
arrives in the JSON body. Each adapter checks its body at once — a bad body is answered 400
or 422 before any job exists — and returns the work the job manager runs, whose result is
the drill's full JSON result (``summary`` first).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from api.jobs import Progress, Work
from cim.errors import NotFoundError, TwinError

_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


class DrillRequestError(TwinError):
    """A drill request's body is malformed or contradicts itself."""


def catalogue(data_dir: Path, folder: str, suffix: str) -> dict[str, Path]:
    """Named inputs under ``data_dir/folder``: ``name -> path`` of files ending in ``suffix``."""
    root = data_dir / folder
    if not root.is_dir():
        return {}
    return {
        p.name[: -len(suffix)]: p
        for p in sorted(root.iterdir())
        if p.name.endswith(suffix) and _NAME.match(p.name[: -len(suffix)])
    }


def _named(data_dir: Path, folder: str, suffix: str, body: dict[str, Any], field: str) -> Path:
    name = body.get(field)
    if not isinstance(name, str) or not _NAME.match(name):
        raise DrillRequestError(f"{field} must name one of the server's {folder} inputs")
    found = catalogue(data_dir, folder, suffix)
    if name not in found:
        raise NotFoundError(f"no {folder} input {name!r}; known: {', '.join(sorted(found))}")
    return found[name]


def _unknown(body: dict[str, Any], allowed: set[str]) -> None:
    extra = sorted(set(body) - allowed)
    if extra:
        raise DrillRequestError(f"unknown fields {', '.join(extra)}; allowed: {sorted(allowed)}")


def traffic_work(body: dict[str, Any], data_dir: Path) -> Work:
    """``{"network": NAME, "closures": [...], "tmax_s", "deltan", "seed",
    "reroute_interval_s"}`` over ``traffic/NAME_{nodes,links,demand}.csv``."""
    from scenarios.traffic import Closure, TrafficSpec, load_uxsim_csv
    from scenarios.traffic import run as run_traffic

    _unknown(body, {"network", "closures", "tmax_s", "deltan", "seed", "reroute_interval_s"})
    nodes = _named(data_dir, "traffic", "_nodes.csv", body, "network")
    network, demand = load_uxsim_csv(str(nodes)[: -len("_nodes.csv")])
    raw = body.get("closures", [])
    if not isinstance(raw, list):
        raise DrillRequestError("closures must be a list of closure events")
    try:
        closures = [Closure.from_dict(c) for c in raw]
    except (KeyError, TypeError, ValueError) as exc:
        raise DrillRequestError(f"closures: {exc}") from None
    for closure in closures:
        try:
            network.link_index(closure.link)
        except KeyError:
            raise DrillRequestError(f"closures: no link named or coded {closure.link!r}") from None
    settings = {k: body[k] for k in ("tmax_s", "deltan", "seed", "reroute_interval_s") if k in body}
    try:
        spec = TrafficSpec(network=network, demand=demand, closures=closures, **settings)
    except (TypeError, ValueError) as exc:
        raise DrillRequestError(str(exc)) from None

    def work(progress: Progress) -> dict[str, Any]:
        result = run_traffic(spec, progress=progress)
        return {"summary": result.summary(), **result.to_dict()}

    return work


#: drill name -> (adapter, what it takes)
ADAPTERS: dict[str, tuple[Callable[[dict[str, Any], Path], Work], str]] = {
    "traffic": (traffic_work, "traffic/NAME_nodes.csv"),
}
