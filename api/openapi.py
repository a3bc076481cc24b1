"""What every operation can answer, written into the OpenAPI schema.

FastAPI documents an operation's success and, when it takes parameters, a ``422`` whose body
is FastAPI's own ``HTTPValidationError``, which this service never sends: :mod:`api.errors`
answers every failure with :class:`~api.errors.ErrorResponse`. :func:`document_errors` gives
each route the error statuses it can answer, each with that body:

=====  =================================================================================
503    every operation (the store or the key store does not answer)
401    an operation that needs a key (its dependencies hold ``request_principal``)
403    one whose dependencies check the key's role (a dependency taking the principal)
404    one with path parameters (no such thing, or outside a pilot's scope)
422    one with parameters or a body (replacing FastAPI's ``HTTPValidationError``)
400    one with a body (``Content-Length`` not a number, :mod:`api.limits`)
413    one with a body (larger than its limit, :mod:`api.limits`)
304    every ``GET`` (``If-None-Match`` naming the ETag, :mod:`api.etag`)
=====  =================================================================================

and keeps what a router or route declares itself (``responses=responses(400, 409)``, a
``200`` with other media types). ``tests/api/test_hostile_api.py`` checks that no operation
answers a status, or a body, it does not document.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from api.auth import request_principal
from api.errors import responses

#: The answer of a conditional ``GET`` whose ``If-None-Match`` names the current ETag.
NOT_MODIFIED: dict[str, Any] = {
    "description": "Not modified: `If-None-Match` names the current `ETag` (no body)"
}


def _dependants(dependant: Dependant) -> Iterator[Dependant]:
    """Every dependency of ``dependant``, depth first."""
    for sub in dependant.dependencies:
        yield sub
        yield from _dependants(sub)


def _has_params(dependant: Dependant) -> bool:
    return any(
        d.path_params or d.query_params or d.header_params or d.cookie_params or d.body_params
        for d in (dependant, *_dependants(dependant))
    )


def error_statuses(route: APIRoute) -> set[int]:
    """The error statuses ``route`` can answer, judged from its dependencies, parameters
    and body (see the table of the module)."""
    found = {503}
    subs = list(_dependants(route.dependant))
    if any(d.call is request_principal for d in subs):
        found.add(401)
    if any(
        d.call is not request_principal and any(s.call is request_principal for s in d.dependencies)
        for d in subs
    ):
        found.add(403)
    if route.dependant.path_params:
        found.add(404)
    if _has_params(route.dependant) or route.body_field is not None:
        found.add(422)
    if route.body_field is not None:
        found |= {400, 413}
    return found


def document_errors(router: APIRouter) -> None:
    """Add to every route of ``router`` the error answers it can give
    (:func:`error_statuses`) and ``304`` to every ``GET``; a status a route already
    documents is kept as it is. Call it before the router is included: the application
    takes its routes' answers then (calling it again changes nothing)."""
    for route in router.routes:
        if not isinstance(route, APIRoute):
            continue
        added: dict[int | str, dict[str, Any]] = dict(responses(*sorted(error_statuses(route))))
        if "GET" in (route.methods or ()):
            added[304] = NOT_MODIFIED
        declared = {str(status): answer for status, answer in route.responses.items()}
        merged = {s: a for s, a in added.items() if str(s) not in declared}
        merged.update(route.responses)
        route.responses = dict(sorted(merged.items(), key=lambda item: str(item[0])))
