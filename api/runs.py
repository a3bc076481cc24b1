"""Drills as runs, seen from the web layer: submit, authorise, finish on the twin, delete.

``submit_drill`` checks a typed spec against the twin (the drill's ``prepare``, in the
request's thread), stores the run with its *resolved* spec and hands it to this process's
:class:`~scenarios.runs.runner.Runner`, which executes it in a worker process or on Ray.
When a run succeeds the runner calls :func:`finish_on_twin` here: its layers are put on the
site (in the store, pushed to every process's viewers) and its drill alerts are raised in
the live twin carrying the run id, which the run's result then names.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from api.keys import Principal, Role
from cim.errors import NotFoundError
from scenarios.drills import DRILLS
from scenarios.drills.base import DrillSpec, PrepareContext
from scenarios.runs.runner import Bounds
from scenarios.runs.store import RunLimitError, RunRecord
from twin.layers import Layer

if TYPE_CHECKING:
    from api.state import TwinState

#: The setting bounding a key's unfinished drill runs.
RUNS_PER_KEY_ENV = "TWIN_MAX_RUNS_PER_KEY"


def prepare_context(state: TwinState) -> PrepareContext:
    """What a drill's ``prepare`` reads in this process."""
    return PrepareContext(
        store=state.store,
        data_dir=state.settings.data_path,
        cache_dir=state.settings.cache_path,
        store_url=str(state.settings.store_url),
        live=state.live,
        runs=state.runs,
    )


def submit_drill(
    state: TwinState,
    principal: Principal,
    name: str,
    spec: DrillSpec,
    baseline: str | None = None,
) -> RunRecord:
    """Check, resolve, store and queue a drill; its queued run.

    Raises
    ------
    NotFoundError
        If there is no such drill, or a named input or code is unknown.
    DrillRequestError
        If the spec contradicts the twin (nothing is stored then).
    RunLimitError
        If the key already has ``max_runs_per_key`` drill runs queued or running.
    """
    if name not in DRILLS:
        raise NotFoundError(f"no drill {name!r}; known: {', '.join(sorted(DRILLS))}")
    drill = DRILLS[name]
    limit = state.settings.max_runs_per_key
    # refused before prepare, which may read a building or a network; the count that
    # decides is the one create makes in its transaction
    running = state.runs.unfinished("drill", principal.key_id)
    if running >= limit:
        raise RunLimitError(RUNS_PER_KEY_ENV, limit, running)
    resolved = drill.prepare(spec, prepare_context(state))
    record = state.runs.create(
        "drill",
        name,
        principal.key_id,
        resolved.model_dump(mode="json", exclude_none=True),
        site=resolved.site_name(),
        scope=resolved.unit_code(),
        baseline=baseline,
        runner=state.runner.id,
        max_unfinished=limit,
        limit=RUNS_PER_KEY_ENV,
    )
    state.runner.submit(record.id, Bounds(drill.max_wall_s, drill.max_memory_mb))
    return record


def finish_on_twin(state: TwinState, run_id: str, finish: dict[str, Any]) -> dict[str, Any]:
    """Put a finishing run's layers on its site and raise its drill alerts (run id as the
    drill); what to add to its result (what was put and raised)."""
    from twin.alerts import DrillAlert

    extra: dict[str, Any] = {}
    layers = []
    for item in finish.get("layers", []):
        layer = Layer(
            str(item["site"]),
            str(item["name"]),
            {str(k): float(v) for k, v in item["values"].items()},
            str(item.get("legend", "")),
            str(item.get("unit", "")),
            run_id=run_id,
        )
        state.layers.put(layer)
        layers.append({"site": layer.site, "name": layer.name, "objects": len(layer.values)})
    if layers:
        extra["layers"] = layers
    alerts = [DrillAlert(**a) for a in finish.get("alerts", [])]
    if alerts and state.live is not None:
        raised = state.live.alerts.raise_drill_alerts(run_id, alerts, state.live.clock())
        extra["drill_alerts"] = {
            "source": "drill",
            "drill": run_id,
            "count": len(raised),
            "codes": [a["code"] for a in raised],
        }
    else:
        extra["drill_alerts"] = None
    return extra


def close_run_alerts(state: TwinState, run_id: str, actor: str) -> int:
    """Close the active drill alerts a run raised; how many."""
    if state.live is None:
        return 0
    rows = state.live.db.query(
        "SELECT code FROM live_alerts WHERE source = 'drill' AND drill = ? "
        "AND state IN ('open', 'acknowledged', 'cleared')",
        (run_id,),
    )
    now = state.live.clock()
    for (code,) in rows:
        state.live.alerts.act(str(code), "close", actor, f"run {run_id} deleted", now)
    return len(rows)


def visible_run(state: TwinState, principal: Principal, run_id: str) -> RunRecord:
    """The run, if the principal may see it: an admin, planner or display every drill run
    (and its own jobs), a pilot the runs about its unit.

    Raises
    ------
    NotFoundError
        If there is no such run or the principal may not see it (404 either way).
    """
    record = state.runs.get(run_id)
    if not may_see(principal, record):
        raise NotFoundError(f"no run {run_id!r}")
    return record


def may_see(principal: Principal, record: RunRecord) -> bool:
    """Whether the principal may see the run."""
    if principal.role is Role.ADMIN:
        return True
    if principal.role is Role.PILOT:
        return record.scope is not None and principal.sees(record.scope, record.site)
    if record.kind != "drill":
        return record.owner == principal.key_id
    return principal.role in (Role.PLANNER, Role.DISPLAY)


def may_cancel(principal: Principal, record: RunRecord) -> bool:
    """Admins and planners cancel any drill run; a pilot its own."""
    if principal.role is Role.ADMIN:
        return True
    if principal.role is Role.PLANNER:
        return record.kind == "drill" or record.owner == principal.key_id
    return principal.role is Role.PILOT and record.owner == principal.key_id
