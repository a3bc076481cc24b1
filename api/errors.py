"""The one place where failures become HTTP status codes.

Every error response has the body ``{"error": {"type": ..., "message": ...}}`` (plus
``"parameter"`` for a bad query parameter, ``"details"`` for a request that fails
validation, ``"limit"`` and ``"value"`` for a request beyond a bound of the service); a
traceback never reaches the client, and a message never echoes more than
:data:`ECHO_CHARS` characters of one word of the request (a huge id or code is cut).
:func:`responses` documents these answers in the OpenAPI schema (:class:`ErrorResponse`).

==========================================  ======
error                                       status
==========================================  ======
:class:`QueryError` (bad query parameter)   400
:class:`AuthenticationError`                401
:class:`PermissionDeniedError`              403
``NotFoundError``                           404
``ConflictError``                           409
``SourceError``, ``CRSError``               422
``DrillLimitError`` (a drill past a bound)  422
``RequestValidationError``                  422
a body beyond the limit (:mod:`api.limits`)  413
``LimitError`` (a bound of the service)     400
``RunLimitError``, :class:`BusyError`        429
``StoreError``, ``QueryTimeoutError``       503
any other ``TwinError``                     400
anything else                               500
==========================================  ======
"""

from __future__ import annotations

import logging
import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from cim.errors import ConflictError, NotFoundError, SourceError, StoreError, TwinError
from scenarios.drills.base import DrillLimitError
from scenarios.runs.store import RunLimitError
from twin.errors import LimitError, QueryTimeoutError

logger = logging.getLogger(__name__)

#: Most specific first: the first match decides.
_STATUS: tuple[tuple[type[TwinError], int], ...] = (
    (NotFoundError, 404),
    (SourceError, 422),
    (DrillLimitError, 422),
    (ConflictError, 409),
    (StoreError, 503),
    (TwinError, 400),
)


#: Longest run of non-blank characters a message repeats from a request; longer ones are cut.
ECHO_CHARS = 64
#: Longest message of an error answer, characters.
MESSAGE_CHARS = 2_000
#: Most fields one validation error answer names.
VALIDATION_DETAILS = 20
_LONG_WORD = re.compile(r"\S{" + str(ECHO_CHARS + 1) + ",}")


def shorten(message: str) -> str:
    """``message`` with every word longer than :data:`ECHO_CHARS` cut (``…`` and how many
    characters were left out), at most :data:`MESSAGE_CHARS` long."""

    def cut(match: re.Match[str]) -> str:
        word = match.group(0)
        return f"{word[: ECHO_CHARS - 1]}…(+{len(word) - ECHO_CHARS + 1} chars)"

    text = _LONG_WORD.sub(cut, message)
    return text if len(text) <= MESSAGE_CHARS else text[: MESSAGE_CHARS - 1] + "…"


class ErrorDetail(BaseModel):
    """What went wrong."""

    type: str = Field(description="the kind of error (`NotFoundError`, `LimitError`...)")
    message: str = Field(description="what is wrong and, where it helps, what to do")
    parameter: str | None = Field(None, description="the query parameter at fault")
    details: list[dict[str, Any]] | None = Field(
        None, description="one item per failed field of a request that fails validation"
    )
    limit: str | None = Field(None, description="the setting (environment variable) exceeded")
    value: float | None = Field(None, description="that setting's value")
    running: int | None = Field(None, description="the key's drill runs queued or running now")


class ErrorResponse(BaseModel):
    """The body of every error answer."""

    error: ErrorDetail


#: What each error status means, for the OpenAPI schema.
_DESCRIPTIONS = {
    400: "The request is malformed, contradicts the twin or goes beyond a bound of the "
    "service (`limit` names it)",
    401: "No API key, or one that is not known",
    403: "The key's role may not do this",
    404: "No such thing (or it is outside the key's scope)",
    409: "The thing is not in a state that allows this",
    413: "The request body is larger than the limit (`limit` names it)",
    429: "Too many of this request at once, from this key or in all (`limit` names the "
    "setting; `Retry-After` says when to try again)",
    422: "A parameter or the body fails validation (`details` names each field)",
    503: "The store does not answer, or a query ran past the statement timeout",
}


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI ``responses`` of error ``statuses``, each with the shared error body."""
    return {
        status: {"model": ErrorResponse, "description": _DESCRIPTIONS[status]}
        for status in statuses
    }


class QueryError(ValueError):
    """A query parameter is malformed or contradicts another; names the parameter."""

    def __init__(self, parameter: str, message: str) -> None:
        self.parameter = parameter
        super().__init__(f"{parameter}: {message}")


class BusyError(Exception):
    """Too many requests of one kind at once, from one key or in all (429, with
    ``Retry-After``).

    Parameters
    ----------
    limit : the setting's environment variable (``TWIN_RENDERS_PER_KEY``)
    value : the bound
    message : what is busy and what to do
    retry_after_s : when to try again, whole seconds
    """

    def __init__(self, limit: str, value: float, message: str, retry_after_s: int = 1) -> None:
        self.limit = limit
        self.value = value
        self.retry_after_s = retry_after_s
        super().__init__(f"{message} (limit {limit}={value:g})")


class AuthenticationError(Exception):
    """No API key, or one that is not known."""


class PermissionDeniedError(Exception):
    """The key's role may not do this."""


def status_of(error: TwinError) -> int:
    """The HTTP status of a domain error."""
    for kind, status in _STATUS:
        if isinstance(error, kind):
            return status
    return 400


def error_body(kind: str, message: str, **extra: Any) -> dict[str, Any]:
    """The error envelope."""
    return {"error": {"type": kind, "message": message, **extra}}


def _twin_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, TwinError)
    status = status_of(exc)
    if status >= 500:
        logger.warning("%s %s: %s", request.method, request.url.path, shorten(str(exc)))
    extra: dict[str, Any] = {}
    if isinstance(exc, LimitError | QueryTimeoutError):
        extra = {"limit": exc.limit, "value": exc.value}
    return JSONResponse(
        error_body(type(exc).__name__, shorten(str(exc)), **extra), status_code=status
    )


#: When a key whose drill runs are at their limit is told to try again, s.
RUN_RETRY_AFTER_S = 30


def _busy_error(request: Request, exc: Exception) -> JSONResponse:
    if isinstance(exc, RunLimitError):
        limit, value, retry = exc.limit, float(exc.value), RUN_RETRY_AFTER_S
        extra: dict[str, Any] = {"running": exc.running}
    else:
        assert isinstance(exc, BusyError)
        limit, value, retry, extra = exc.limit, exc.value, exc.retry_after_s, {}
    return JSONResponse(
        error_body(type(exc).__name__, shorten(str(exc)), limit=limit, value=value, **extra),
        status_code=429,
        headers={"Retry-After": str(retry)},
    )


def _query_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, QueryError)
    return JSONResponse(
        error_body("QueryError", shorten(str(exc)), parameter=exc.parameter), status_code=400
    )


def _authentication_error(request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse(
        error_body("AuthenticationError", str(exc)),
        status_code=401,
        headers={"WWW-Authenticate": 'Bearer realm="city-twin"'},
    )


def _permission_error(request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse(error_body("PermissionDeniedError", str(exc)), status_code=403)


def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    # the offending input is left out: it may be long, or a secret sent in the wrong place
    # at most VALIDATION_DETAILS items, each part of a location cut like a message's words
    details = [
        {
            "loc": [shorten(str(part)) for part in item.get("loc", ())],
            "message": item.get("msg", ""),
        }
        for item in exc.errors()[:VALIDATION_DETAILS]
    ]
    message = shorten("; ".join(f"{'.'.join(d['loc'])}: {d['message']}" for d in details))
    return JSONResponse(
        error_body("ValidationError", message or "invalid request", details=details),
        status_code=422,
    )


def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    return JSONResponse(
        error_body("HTTPError", str(exc.detail)),
        status_code=exc.status_code,
        headers=exc.headers,
    )


def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    logger.exception("%s %s failed", request.method, request.url.path)
    return JSONResponse(error_body("InternalError", "internal server error"), status_code=500)


def install_error_handlers(app: FastAPI) -> None:
    """Map every failure to the error envelope on ``app``."""
    app.add_exception_handler(TwinError, _twin_error)
    app.add_exception_handler(RunLimitError, _busy_error)
    app.add_exception_handler(BusyError, _busy_error)
    app.add_exception_handler(QueryError, _query_error)
    app.add_exception_handler(AuthenticationError, _authentication_error)
    app.add_exception_handler(PermissionDeniedError, _permission_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected_error)
