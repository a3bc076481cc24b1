"""``/sites``: the sites a caller may see, and one site in detail."""

from __future__ import annotations

from fastapi import APIRouter

from api.auth import Reader
from api.keys import Principal
from api.schemas import SiteDetailPublic, SitePublic, SourcePublic
from api.site_views import SiteView
from api.state import State, TwinState
from cim.errors import NotFoundError
from cim.model import SiteInfo

router = APIRouter(prefix="/sites", tags=["sites"])


def scoped_view(state: TwinState, principal: Principal, site: str) -> SiteView:
    """The part of ``site`` the principal may see (all of it unless it is a pilot).

    Raises
    ------
    NotFoundError
        If there is no such site, or a pilot sees nothing in it (the same answer).
    """
    if not principal.scoped:
        return state.views.view(site)
    scopes = principal.in_site(site)  # a scope names its site: none of another site's codes
    if not scopes:
        raise NotFoundError(f"no site named {site!r}")
    view = state.views.view(site, scopes)
    if view.empty:
        raise NotFoundError(f"no site named {site!r}")
    return view


def _summary(state: TwinState, principal: Principal, info: SiteInfo) -> SitePublic:
    """A site as the principal sees it.

    Raises
    ------
    NotFoundError
        If a pilot sees nothing in it.
    """
    if principal.scoped:
        view = scoped_view(state, principal, info.name)
        bbox, objects = view.bbox(), view.kind_counts(admin=False)
    else:
        bbox, objects = info.bbox, state.store.kind_counts(info.name)
    return SitePublic(
        name=info.name, crs=info.crs, bbox=bbox, version=info.version, objects=objects
    )


@router.get("", response_model=list[SitePublic])
def list_sites(state: State, principal: Reader) -> list[SitePublic]:
    """The sites, with extent, version and source-object counts by kind (for a pilot: only
    the sites holding its units, counted within its scope)."""
    out = []
    for info in state.store.sites():
        try:
            out.append(_summary(state, principal, info))
        except NotFoundError:
            continue
    return out


@router.get("/{site}", response_model=SiteDetailPublic)
def read_site(site: str, state: State, principal: Reader) -> SiteDetailPublic:
    """One site: extent, counts, grid counts, sources, division, grid cell size, frames.

    Raises
    ------
    NotFoundError
        If there is no such site, or a pilot sees nothing in it (404).
    """
    info = state.store.site(site)
    summary = _summary(state, principal, info)
    sources = state.store.sources(info.name)
    if principal.scoped:
        view = scoped_view(state, principal, site)
        grid = view.kind_counts(admin=True)
        visible = {o.source for o in view.by_code.values()}
        sources = [s for s in sources if s["key"] in visible]
    else:
        grid = dict(sorted(state.store.admin_counts(info.name).items()))
    return SiteDetailPublic(
        **summary.model_dump(),
        grid=grid,
        sources=[SourcePublic(**s) for s in sources],
        division=info.division,
        cell_m=info.cell_m,
        origin=info.origin,
        enu_origin=info.enu_origin,
    )
