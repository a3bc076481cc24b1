"""``/drills``: run a flood, crowd or traffic drill as a job.

``GET /drills`` lists the drills and the named inputs the server holds for each;
``POST /drills/{name}`` (planner, admin; a unit pilot the evacuation of its own building)
checks the body at once and answers ``202`` with the
job; ``GET /jobs/{id}`` gives progress and, when done, the drill's result.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, Body
from fastapi import Path as PathParam
from fastapi.responses import JSONResponse, Response

from api.auth import WRITE_ROLES, Reader
from api.drill_jobs import ADAPTERS, catalogue, drill_files
from api.errors import PermissionDeniedError
from api.keys import Principal, Role
from api.state import State
from cim.errors import NotFoundError

router = APIRouter(prefix="/drills", tags=["drills"])


def _inputs(data_dir: Path, patterns: tuple[str, ...]) -> list[str]:
    names: set[str] = set()
    for pattern in patterns:
        folder, _, suffix = pattern.partition("/NAME")
        names |= set(catalogue(data_dir, folder, suffix))
    return sorted(names)


@router.get("")
def list_drills(state: State, principal: Reader) -> list[dict[str, Any]]:
    """The drills and the named inputs each can run on."""
    data_dir = Path(state.settings.data_dir)
    return [
        {"name": name, "inputs": _inputs(data_dir, patterns)}
        for name, (_, patterns) in sorted(ADAPTERS.items())
    ]


#: Drills a unit pilot may run on a building of its own unit (the body's ``building``).
PILOT_DRILLS = ("evacuation",)


def _may_start(principal: Principal, name: str, body: dict[str, Any]) -> None:
    """Planners and admins start any drill; a pilot only the evacuation of its own unit."""
    if principal.role in WRITE_ROLES:
        return
    if principal.role is not Role.PILOT or name not in PILOT_DRILLS:
        raise PermissionDeniedError(f"a {principal.role.value} key may not start a {name} drill")
    building = body.get("building")
    if not isinstance(building, str) or not principal.sees(building):
        raise NotFoundError(f"no building {building!r} in this key's unit")


@router.post("/{name}", status_code=202, response_model=None)
def start_drill(
    name: str,
    state: State,
    principal: Reader,
    body: dict[str, Any] = Body(...),  # noqa: B008
) -> JSONResponse:
    """Start a drill; ``202`` with the job (``Location: /jobs/{id}``). Planners and admins
    start any drill; a pilot key the evacuation of a building in its unit.

    Raises
    ------
    PermissionDeniedError
        If the key's role may not start this drill (403).
    NotFoundError
        If there is no such drill or named input, or a pilot names a building outside its
        unit.
    DrillRequestError
        If the body is malformed (400).
    """
    _may_start(principal, name, body)
    if name not in ADAPTERS:
        raise NotFoundError(f"no drill {name!r}; known: {', '.join(sorted(ADAPTERS))}")
    adapter, _ = ADAPTERS[name]
    work = adapter(body, state)
    job = state.jobs.submit(name, principal.key_id, work, body)
    return JSONResponse(job.to_dict(), status_code=202, headers={"Location": f"/jobs/{job.id}"})


_MEDIA_TYPES = {".png": "image/png", ".tif": "image/tiff"}


@router.get(
    "/files/{name}",
    response_class=Response,
    responses={200: {"content": {"image/png": {}, "image/tiff": {}}}},
)
def drill_file(
    state: State,
    principal: Reader,
    name: str = PathParam(pattern=r"^[0-9a-f]{32}\.(png|tif)$"),
) -> Response:
    """A file a drill left (a crowd density map, a flood depth map or GeoTIFF), by the
    random name its job result gives.

    Raises
    ------
    NotFoundError
        If there is no such file.
    """
    path = drill_files(state) / name
    if not path.is_file():
        raise NotFoundError(f"no drill file {name!r}")
    return Response(path.read_bytes(), media_type=_MEDIA_TYPES[path.suffix])
