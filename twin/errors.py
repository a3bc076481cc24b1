"""Errors of the live twin, under :class:`cim.errors.TwinError`.

::

    TwinError
    ├── RequestError           a SensorThings request or body is malformed (400)
    ├── NotFoundError          an entity, alert or case does not exist (404)
    └── ConflictError
        └── TransitionError    a case or alert may not go to that state from where it is (409)
"""

from __future__ import annotations

from cim.errors import ConflictError, TwinError


class RequestError(TwinError):
    """A request (path, query option or body) is malformed; says which part and why."""


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
