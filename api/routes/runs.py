"""``/runs``: drills as durable runs — their records, per-object results, frames and files.

Every API process answers alike: runs live in the store. A planner, admin or display key
sees every drill run; a pilot the runs about its unit. ``DELETE`` cancels an unfinished run
(admin, planner; a pilot its own) or deletes a finished one with its files, layers and the
drill alerts it raised.
"""

from __future__ import annotations

import re
import shutil
import struct
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response

from api.auth import Reader
from api.errors import PermissionDeniedError
from api.keys import Principal, Role
from api.live_deps import scopes_of
from api.runs import close_run_alerts, may_cancel, visible_run
from api.state import State
from cim.errors import NotFoundError
from scenarios.runs.store import RunState

router = APIRouter(prefix="/runs", tags=["runs"])

_FILE_NAME = re.compile(r"^[a-z0-9_-]{1,64}\.(png|tif|json)$")
#: The binary frames' magic: ``TWRF`` then a little-endian uint32 header length.
FRAMES_MAGIC = b"TWRF"


@router.get("")
def list_runs(
    state: State,
    principal: Reader,
    drill: Annotated[str | None, Query(max_length=64)] = None,
    site: Annotated[str | None, Query(max_length=64)] = None,
    run_state: Annotated[RunState | None, Query(alias="state")] = None,
    owner: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> dict[str, Any]:
    """Drill runs, newest first, filtered by drill, site, state and owner (key id), paged."""
    scopes = list(scopes_of(principal) or ()) if principal.role is Role.PILOT else None
    records, total = state.runs.find(
        kind="drill",
        drill=drill,
        site=site,
        state=run_state.value if run_state is not None else None,
        owner=owner,
        scopes=scopes,
        limit=limit,
        offset=offset,
    )
    return {
        "runs": [_brief(r.to_public()) for r in records],
        "total": total,
        "limit": limit,
        "offset": offset,
    }


def _brief(record: dict[str, Any]) -> dict[str, Any]:
    result = record.pop("result", None)
    record["summary"] = result.get("summary") if isinstance(result, dict) else None
    return record


@router.get("/{run_id}")
def read_run(run_id: str, state: State, principal: Reader) -> dict[str, Any]:
    """One run: ``{"id", "drill", "site", "state", "progress", "message", "spec",
    "baseline", "result", "created", "started", "finished"}``.

    Raises
    ------
    NotFoundError
        If there is no such run, or the key may not see it.
    """
    return visible_run(state, principal, run_id).to_public()


def require_canceller(principal: Reader) -> Principal:
    """Keys that may stop or delete some run: admin, planner, pilot (its own).

    Raises
    ------
    PermissionDeniedError
        For a display or device key (403), before the run is looked up.
    """
    if principal.role not in (Role.ADMIN, Role.PLANNER, Role.PILOT):
        raise PermissionDeniedError(f"a {principal.role.value} key may not stop runs")
    return principal


@router.delete("/{run_id}")
def delete_run(
    run_id: str, state: State, principal: Annotated[Principal, Depends(require_canceller)]
) -> dict[str, Any]:
    """Cancel an unfinished run (it stops within about two seconds), or delete a finished
    one: its per-object results, series, files and layers go, its drill alerts close.

    Raises
    ------
    NotFoundError
        If there is no such run, or the key may not see it.
    PermissionDeniedError
        If the key may not cancel or delete it (403).
    """
    record = visible_run(state, principal, run_id)
    if not may_cancel(principal, record):
        raise PermissionDeniedError(f"a {principal.role.value} key may not stop run {run_id}")
    if not record.finished_state:
        return state.runs.request_cancel(run_id).to_public()
    closed = close_run_alerts(state, run_id, principal.key_id)
    removed = state.layers.table.delete_of_run(run_id)
    state.runs.delete(run_id)
    shutil.rmtree(state.runs.folder(run_id), ignore_errors=True)
    return {
        "id": run_id,
        "deleted": True,
        "alerts_closed": closed,
        "layers_removed": [name for _, name in removed],
    }


@router.get("/{run_id}/objects")
def run_objects(
    run_id: str,
    state: State,
    principal: Reader,
    metric: Annotated[str | None, Query(max_length=64)] = None,
    prefix: Annotated[str | None, Query(max_length=32, pattern=r"^[0-9A-Za-z]*$")] = None,
) -> dict[str, Any]:
    """Per-object results ``{"objects": [{"code", "metric", "value", "first_t_s"}]}``.

    Raises
    ------
    NotFoundError
        If there is no such run, or the key may not see it.
    """
    record = visible_run(state, principal, run_id)
    rows = state.runs.objects(run_id, metric=metric, prefix=prefix)
    return {"run": run_id, "objects": [r for r in rows if principal.sees(r["code"], record.site)]}


@router.get(
    "/{run_id}/frames",
    response_model=None,
    responses={200: {"content": {"application/json": {}, "application/octet-stream": {}}}},
)
def run_frames(
    run_id: str,
    state: State,
    principal: Reader,
    metric: Annotated[str, Query(min_length=1, max_length=64)],
    form: Annotated[str, Query(alias="format", pattern="^(json|binary)$")] = "json",
) -> Response:
    """A metric over time: JSON ``{"metric", "unit", "times_s", "codes", "values"}``
    (values ``[time][code]``), or with ``format=binary`` the compact form: ``TWRF``, a
    little-endian uint32 header length, the header JSON ``{"metric", "unit", "n", "m",
    "codes"}``, then ``n`` float64 times and ``n × m`` float32 values, row by row.

    Raises
    ------
    NotFoundError
        If there is no such run or series, or the key may not see the run.
    """
    record = visible_run(state, principal, run_id)
    unit, times, codes, values = state.runs.series(run_id, metric)
    keep = [i for i, c in enumerate(codes) if principal.sees(c, record.site)]
    if len(keep) != len(codes):
        codes = [codes[i] for i in keep]
        values = values[:, keep]
    if form == "binary":
        header = orjson.dumps(
            {"metric": metric, "unit": unit, "n": len(times), "m": len(codes), "codes": codes}
        )
        body = (
            FRAMES_MAGIC
            + struct.pack("<I", len(header))
            + header
            + times.astype("<f8").tobytes()
            + values.astype("<f4").tobytes()
        )
        return Response(body, media_type="application/octet-stream")
    payload = {
        "run": run_id,
        "metric": metric,
        "unit": unit,
        "times_s": times.tolist(),
        "codes": codes,
        "values": values.tolist(),
    }
    return Response(orjson.dumps(payload), media_type="application/json")


@router.get(
    "/{run_id}/files/{name}",
    response_class=Response,
    responses={200: {"content": {"image/png": {}, "image/tiff": {}}}},
)
def run_file(run_id: str, name: str, state: State, principal: Reader) -> Response:
    """A file the run left (a depth or density map, a GeoTIFF), by the name its result
    gives; only names the run recorded are served, from the run's own folder.

    Raises
    ------
    NotFoundError
        If there is no such run or file, or the key may not see the run.
    """
    visible_run(state, principal, run_id)
    if not _FILE_NAME.match(name):
        raise NotFoundError(f"run {run_id} has no file {name!r}")
    found = {f["name"]: f for f in state.runs.files(run_id)}
    entry = found.get(name)
    path = state.runs.folder(run_id) / name
    if entry is None or not path.is_file():
        raise NotFoundError(f"run {run_id} has no file {name!r}")
    return Response(path.read_bytes(), media_type=str(entry["media_type"]))
