"""``/sta/v1.1``: the OGC SensorThings API 1.1 over the live twin.

Reads for every reader role (a pilot sees the Things, Datastreams, Observations and
Locations of its subtree only); entity writes for admin keys; Observations (``POST
Observations``, ``POST Datastreams(n)/Observations``, ``POST CreateObservations``) for admin
and device keys. Each Thing and Datastream links to a CIM object through
``properties.cimSite`` / ``properties.cimCode``, so ``Datastreams?$filter=startswith(
properties/cimCode,'<building code>')`` lists the sensors of a building.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from api.auth import CurrentPrincipal
from api.errors import responses
from api.keys import Role
from api.live_deps import Ingester, Live, LiveReader, StaEditor, check_role, scopes_of

router = APIRouter(prefix="/sta/v1.1", tags=["sensorthings"], responses=responses(400))

_CONFORMANCE = [
    "http://www.opengis.net/spec/iot_sensing/1.1/req/datamodel",
    "http://www.opengis.net/spec/iot_sensing/1.1/req/resource-path/resource-path-to-entities",
    "http://www.opengis.net/spec/iot_sensing/1.1/req/request-data",
    "http://www.opengis.net/spec/iot_sensing/1.1/req/create-update-delete",
    "http://www.opengis.net/spec/iot_sensing/1.1/req/data-array/data-array",
    "http://www.opengis.net/spec/iot_sensing/1.1/req/create-observations-via-mqtt/observations-creation",
]
_SETS = (
    "Things",
    "Locations",
    "Datastreams",
    "Sensors",
    "ObservedProperties",
    "Observations",
    "FeaturesOfInterest",
)


def _root(request: Request) -> str:
    return str(request.base_url).rstrip("/") + "/sta/v1.1"


@router.get("")
def read_service_root(request: Request, live: Live, principal: LiveReader) -> dict[str, Any]:
    """The service root: entity sets and the conformance classes served."""
    root = _root(request)
    mqtt = live.mqtt.settings if live.mqtt is not None else None
    return {
        "value": [{"name": name, "url": f"{root}/{name}"} for name in _SETS],
        "serverSettings": {
            "conformance": _CONFORMANCE,
            _CONFORMANCE[-1]: {
                "endpoints": [mqtt.url] if mqtt else [],
                "bulkTopic": f"{mqtt.prefix}twin/v1/bulk" if mqtt else None,
            },
        },
    }


@router.post("/CreateObservations", status_code=201)
def create_observations(body: list[Any], live: Live, principal: Ingester) -> list[str]:
    """The dataArray extension: many Observations in one request; one self link or
    ``"error"`` per row (bad rows are dead-lettered, the others stored)."""
    return live.create_observations(body)


@router.get(
    "/{path:path}",
    responses={200: {"content": {"application/json": {}, "text/plain": {}}}},
)
def read_sta(path: str, request: Request, live: Live, principal: LiveReader) -> Any:
    """A collection (with ``$filter $top $skip $orderby $expand $select $count``), an
    entity, a property, or a property's raw ``$value``."""
    result = live.sta.read(path, dict(request.query_params), _root(request), scopes_of(principal))
    if path.endswith("/$value"):
        return Response(content=str(result), media_type="text/plain")
    return result


@router.post("/{path:path}", status_code=201, responses=responses(403))
def create_sta(
    path: str, body: dict[str, Any], request: Request, live: Live, principal: CurrentPrincipal
) -> JSONResponse:
    """Create an entity, with deep insert (a Thing with its Locations and Datastreams)."""
    if path.rstrip("/").endswith("Observations"):
        check_role(principal, frozenset({Role.ADMIN, Role.DEVICE}), "post observations")
    else:
        check_role(principal, frozenset({Role.ADMIN}), "edit sensors")
    ident = live.sta.create(path, body)
    name = live.sta.resolve(path).entities.name
    location = f"{_root(request)}/{name}({ident})"
    entity = live.sta.read(f"{name}({ident})", {}, _root(request))
    return JSONResponse(entity, status_code=201, headers={"Location": location})


@router.patch("/{path:path}")
def update_sta(
    path: str, body: dict[str, Any], request: Request, live: Live, principal: StaEditor
) -> Any:
    """Patch an entity's properties (or relink a Datastream)."""
    live.sta.update(path, body)
    return live.sta.read(path, {}, _root(request))


@router.delete("/{path:path}", status_code=200)
def delete_sta(path: str, live: Live, principal: StaEditor) -> dict[str, Any]:
    """Delete an entity (a Thing takes its Datastreams and their Observations along)."""
    live.sta.delete(path)
    return {"deleted": path}
