"""``/drills``: start a flood, crowd, traffic or evacuation drill as a durable run.

``GET /drills`` lists the drills and the named inputs the server holds for each;
``POST /drills/{name}`` takes the drill's typed body (a named schema in OpenAPI: a wrong or
out-of-bounds field is refused with its name, 422, and nothing starts), checks it against
the twin (400/404 naming what is wrong; 422 when it passes a bound there: a venue's cells,
a building's occupants), refuses a key with ``TWIN_MAX_RUNS_PER_KEY`` unfinished runs
(429), stores the run and answers ``202`` with
``{"id", "state", "href": "/runs/{id}"}``. Planners and admins start any drill; a unit
pilot the drills about its own unit (a building's evacuation).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from api.auth import WRITE_ROLES, Reader
from api.errors import PermissionDeniedError, responses
from api.keys import Principal, Role
from api.runs import submit_drill
from api.state import State
from cim.errors import NotFoundError
from scenarios.drills import DRILLS
from scenarios.drills.base import Drill, DrillSpec

router = APIRouter(prefix="/drills", tags=["drills"])

_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


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


def _inputs(data_dir: Path, patterns: tuple[str, ...]) -> list[str]:
    names: set[str] = set()
    for pattern in patterns:
        folder, _, suffix = pattern.partition("/NAME")
        names |= set(catalogue(data_dir, folder, suffix))
    return sorted(names)


@router.get("")
def list_drills(state: State, principal: Reader) -> list[dict[str, Any]]:
    """The drills, what each is, its body's schema name and the named inputs it runs on."""
    data_dir = state.settings.data_path
    return [
        {
            "name": name,
            "help": drill.help,
            "schema": drill.spec.__name__,
            "inputs": _inputs(data_dir, drill.inputs),
        }
        for name, drill in sorted(DRILLS.items())
    ]


def may_start(principal: Principal, name: str, spec: DrillSpec) -> None:
    """Planners and admins start any drill; a pilot only a drill about its own unit.

    Raises
    ------
    PermissionDeniedError
        If the key's role may not start this drill.
    NotFoundError
        If a pilot names an object outside its unit.
    """
    if principal.role in WRITE_ROLES:
        return
    unit = spec.unit_code()
    if principal.role is not Role.PILOT or unit is None:
        raise PermissionDeniedError(f"a {principal.role.value} key may not start a {name} drill")
    if not principal.sees(unit, spec.site_name()):
        raise NotFoundError(f"no building {unit!r} in this key's unit")


def _starter(drill: Drill[Any]) -> Callable[[Principal], Principal]:
    """The dependency that refuses a key which may never start this drill, before its body
    is read (a display key gets 403, not a complaint about the body)."""
    pilots = drill.spec.unit_code is not DrillSpec.unit_code

    def require_starter(principal: Reader) -> Principal:
        if principal.role in WRITE_ROLES or (principal.role is Role.PILOT and pilots):
            return principal
        raise PermissionDeniedError(
            f"a {principal.role.value} key may not start a {drill.name} drill"
        )

    return require_starter


def _endpoint(drill: Drill[Any]) -> Callable[..., JSONResponse]:
    def start(state: State, principal: Principal, body: DrillSpec) -> JSONResponse:
        may_start(principal, drill.name, body)
        record = submit_drill(state, principal, drill.name, body)
        public = record.to_public()
        return JSONResponse(public, status_code=202, headers={"Location": public["href"]})

    start.__annotations__ = {
        **start.__annotations__,
        "principal": Annotated[Principal, Depends(_starter(drill))],
        "body": drill.spec,
    }
    start.__name__ = f"start_{drill.name}_drill"
    start.__doc__ = (
        f"Start a {drill.name} drill: {drill.help}. ``202`` with the run "
        "(``Location: /runs/{id}``).\n\nRaises\n------\nPermissionDeniedError\n"
        "    If the key may not start it (403).\nNotFoundError\n"
        "    If a named input or code is unknown.\nDrillRequestError\n"
        "    If the body contradicts the twin (400).\nDrillLimitError\n"
        "    If the body, measured against the twin, passes a bound (422).\nRunLimitError\n"
        "    If the key has TWIN_MAX_RUNS_PER_KEY runs queued or running (429)."
    )
    return start


for _drill in DRILLS.values():
    router.add_api_route(
        f"/{_drill.name}",
        _endpoint(_drill),
        methods=["POST"],
        status_code=202,
        response_model=None,
        name=f"start_{_drill.name}_drill",
        responses={202: {"description": "the run, queued"}, **responses(400, 404, 429)},
    )


@router.post("/{name}", status_code=404, include_in_schema=False, response_model=None)
def unknown_drill(name: str, principal: Reader) -> JSONResponse:
    """Any other name: 404 naming the drills there are.

    Raises
    ------
    NotFoundError
        Always.
    """
    raise NotFoundError(f"no drill {name!r}; known: {', '.join(sorted(DRILLS))}")
