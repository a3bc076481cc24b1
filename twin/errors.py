"""Errors of the live twin, under :class:`cim.errors.TwinError`.

::

    TwinError
    ├── RequestError           a SensorThings request or body is malformed (400)
    │   └── LimitError         a request goes beyond a bound of the service (400)
    ├── NotFoundError          an entity, alert or case does not exist (404)
    ├── StoreError
    │   └── QueryTimeoutError  a statement ran past the statement timeout (503)
    └── ConflictError
        └── TransitionError    a case or alert may not go to that state from where it is (409)
"""

from __future__ import annotations

from cim.errors import ConflictError, StoreError, TwinError


def format_bound(value: float) -> str:
    """A bound as a message writes it: an integer in full (``33554432``), a float short
    (``0.5``)."""
    return str(value) if isinstance(value, int) else f"{value:g}"


class RequestError(TwinError):
    """A request (path, query option or body) is malformed; says which part and why."""


class LimitError(RequestError):
    """A request goes beyond a bound of the service (a ``$filter`` too long, ``$top`` too
    large, an answer with too many entities).

    Parameters
    ----------
    limit : the setting's environment variable (``TWIN_STA_MAX_TOP``)
    value : the bound
    message : what was asked and what to do instead
    """

    def __init__(self, limit: str, value: float, message: str) -> None:
        self.limit = limit
        self.value = value
        super().__init__(f"{message} (limit {limit}={format_bound(value)})")


class QueryTimeoutError(StoreError):
    """A statement ran past the statement timeout and was stopped (503).

    Parameters
    ----------
    limit : the setting's environment variable (``TWIN_STA_TIMEOUT_S``)
    value : the timeout, seconds
    """

    def __init__(self, limit: str, value: float) -> None:
        self.limit = limit
        self.value = value
        super().__init__(
            f"the query ran longer than {value:g} s and was stopped: narrow the $filter or "
            f"lower $top (limit {limit}={value:g})"
        )


class TransitionError(ConflictError):
    """An illegal state change of a case or an alert.

    Parameters
    ----------
    code : the case or alert code
    state : where it is
    action : what was asked
    allowed : the actions allowed from ``state``
    """

    def __init__(self, code: str, state: str, action: str, allowed: tuple[str, ...]) -> None:
        self.code = code
        self.state = state
        self.action = action
        self.allowed = allowed
        options = ", ".join(allowed) if allowed else "none (final state)"
        super().__init__(f"{code} is {state}: cannot {action}; allowed: {options}")
