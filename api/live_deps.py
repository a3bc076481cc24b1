"""The live twin of a running application, and who may do what with it.

The application's lifespan opens a :class:`twin.live.LiveTwin` (:func:`open_live`) beside
the CIM store and keeps it in ``app.state.live``. Roles: every reader reads (a pilot only
its subtree); the admin edits SensorThings entities and rules; admin and device keys post
observations; admin, planner and (inside its scope) pilot keys work alerts and cases.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Request

from api.auth import CurrentPrincipal
from api.errors import PermissionDeniedError
from api.keys import READ_ROLES, Principal, Role
from api.settings import Settings
from cim.errors import StoreError
from twin.feed import EventFeed
from twin.live import LiveTwin
from twin.mqtt import MqttSettings


def open_live(settings: Settings, feed: EventFeed | None = None) -> LiveTwin:
    """The live twin of ``settings``, started (MQTT subscriber and sweep). Without
    ``settings.mqtt_url``, ``TWIN_MQTT_URL`` from the environment is used (``twin serve``
    builds its settings from the command line). ``feed``: the process's event feed, shared
    with the layers (one follower thread per process).

    Raises
    ------
    StoreError
        If the store cannot be opened.
    """
    url = settings.mqtt_url or os.environ.get("TWIN_MQTT_URL") or None
    mqtt = (
        MqttSettings(url=url, prefix=settings.mqtt_prefix, client_id=settings.mqtt_client_id)
        if url
        else None
    )
    live = LiveTwin(settings.store_url, mqtt=mqtt, feed=feed, sta_limits=settings.sta_limits)
    live.start()
    return live


def get_live(request: Request) -> LiveTwin:
    """The application's live twin.

    Raises
    ------
    StoreError
        If the application has not started.
    """
    live = getattr(request.app.state, "live", None)
    if not isinstance(live, LiveTwin):
        raise StoreError("the live twin is not started")
    return live


Live = Annotated[LiveTwin, Depends(get_live)]


def scopes_of(principal: Principal) -> tuple[str, ...] | None:
    """The code prefixes a principal is limited to, or ``None`` for everything.

    Only scopes placed in a site count: codes are unique in the store, so a placed prefix
    names one site's objects; an old key's code held by several sites counts for nothing.
    """
    if not principal.scoped:
        return None
    return tuple(p for p, site in zip(principal.scopes, principal.sites, strict=True) if site)


def check_role(principal: Principal, roles: frozenset[Role], what: str) -> None:
    """Refuse a principal whose role is not in ``roles``.

    Raises
    ------
    PermissionDeniedError
        If it is not (403).
    """
    if principal.role not in roles:
        raise PermissionDeniedError(f"a {principal.role.value} key may not {what}")


def _requirer(roles: frozenset[Role], what: str) -> Callable[[Principal], Principal]:
    def require(principal: CurrentPrincipal) -> Principal:
        check_role(principal, roles, what)
        return principal

    return require


require_live_reader = _requirer(READ_ROLES, "read the live twin")
require_sta_editor = _requirer(frozenset({Role.ADMIN}), "edit sensors")
require_ingest = _requirer(frozenset({Role.ADMIN, Role.DEVICE}), "post observations")
require_operator = _requirer(
    frozenset({Role.ADMIN, Role.PLANNER, Role.PILOT}), "work alerts and cases"
)
require_rule_editor = _requirer(frozenset({Role.ADMIN, Role.PLANNER}), "edit rules")

LiveReader = Annotated[Principal, Depends(require_live_reader)]
StaEditor = Annotated[Principal, Depends(require_sta_editor)]
Ingester = Annotated[Principal, Depends(require_ingest)]
Operator = Annotated[Principal, Depends(require_operator)]
RuleEditor = Annotated[Principal, Depends(require_rule_editor)]
