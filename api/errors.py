"""The one place where failures become HTTP status codes.

Every error response has the body ``{"error": {"type": ..., "message": ...}}`` (plus
``"parameter"`` for a bad query parameter, ``"details"`` for a request that fails
validation); a traceback never reaches the client.

==========================================  ======
error                                       status
==========================================  ======
:class:`QueryError` (bad query parameter)   400
:class:`AuthenticationError`                401
:class:`PermissionDeniedError`              403
``NotFoundError``                           404
``ConflictError``                           409
``SourceError``, ``CRSError``               422
``RequestValidationError``                  422
``StoreError``                              503
any other ``TwinError``                     400
anything else                               500
==========================================  ======
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from cim.errors import ConflictError, NotFoundError, SourceError, StoreError, TwinError

logger = logging.getLogger(__name__)

#: Most specific first: the first match decides.
_STATUS: tuple[tuple[type[TwinError], int], ...] = (
    (NotFoundError, 404),
    (SourceError, 422),
    (ConflictError, 409),
    (StoreError, 503),
    (TwinError, 400),
)


class QueryError(ValueError):
    """A query parameter is malformed or contradicts another; names the parameter."""

    def __init__(self, parameter: str, message: str) -> None:
        self.parameter = parameter
        super().__init__(f"{parameter}: {message}")


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
        logger.warning("%s %s: %s", request.method, request.url.path, exc)
    return JSONResponse(error_body(type(exc).__name__, str(exc)), status_code=status)


def _query_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, QueryError)
    return JSONResponse(
        error_body("QueryError", str(exc), parameter=exc.parameter), status_code=400
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
    details = [
        {"loc": [str(part) for part in item.get("loc", ())], "message": item.get("msg", "")}
        for item in exc.errors()
    ]
    message = "; ".join(f"{'.'.join(d['loc'])}: {d['message']}" for d in details)
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
    app.add_exception_handler(QueryError, _query_error)
    app.add_exception_handler(AuthenticationError, _authentication_error)
    app.add_exception_handler(PermissionDeniedError, _permission_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected_error)
