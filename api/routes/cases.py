"""``/cases``: the disposal workflow (立案 → 派遣 → 处置 → 核查 → 结案) and its statistics.

Readers read (a pilot the cases of its subtree); admin, planner and pilot keys open cases
and move them; an illegal step answers 409 with the allowed actions.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from api.errors import PermissionDeniedError, responses
from api.live_deps import Live, LiveReader, Operator, scopes_of
from api.settings import CODE_CHARS, NOTE_CHARS, TITLE_CHARS

router = APIRouter(prefix="/cases", tags=["cases"])


class CaseCreate(BaseModel):
    """A case opened by an operator or another system (every text bounded: a longer one is
    refused, 422 naming the field)."""

    title: str = Field(min_length=1, max_length=TITLE_CHARS)
    source: Literal["operator", "api"] = "api"
    site: str | None = Field(None, max_length=64)
    object_code: str | None = Field(None, max_length=CODE_CHARS)
    class_code: str = Field("", max_length=CODE_CHARS)
    urgency: Literal["urgent", "high", "normal", "low"] = "normal"
    unit: str = Field("", max_length=CODE_CHARS)


class CaseAction(BaseModel):
    """A note on a workflow step."""

    note: str = Field("", max_length=NOTE_CHARS)


@router.get("")
def list_cases(
    live: Live,
    principal: LiveReader,
    prefix: Annotated[str, Query(max_length=CODE_CHARS, description="object code prefix")] = "",
    state: Annotated[str | None, Query(max_length=32)] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> list[dict[str, Any]]:
    """Cases of objects under ``prefix``, newest first."""
    return live.cases.find(prefix, state, scopes_of(principal), limit)


@router.get("/statistics")
def case_statistics(
    live: Live,
    principal: LiveReader,
    by: Annotated[Literal["grid", "unit"], Query()] = "grid",
) -> list[dict[str, Any]]:
    """Counts, closure, on-time disposal and rework rates, and hours from first reading to
    disposal, per grid cell or responsible unit."""
    return live.cases.statistics(by, scopes_of(principal))


@router.post("", status_code=201, responses=responses(404))
def open_case(body: CaseCreate, live: Live, principal: Operator) -> dict[str, Any]:
    """Open a case (state ``reported``).

    Raises
    ------
    PermissionDeniedError
        If a pilot names no object, or one outside its subtree (403).
    NotFoundError
        If ``site`` and ``object_code`` name no object (404).
    """
    if principal.scoped and (
        body.object_code is None or not principal.sees(body.object_code, body.site)
    ):
        raise PermissionDeniedError("a pilot opens cases on objects of its own subtree only")
    return live.cases.open(
        title=body.title,
        source=body.source,
        actor=principal.name or principal.key_id,
        now_us=live.clock(),
        site=body.site,
        object_code=body.object_code,
        class_code=body.class_code,
        urgency=body.urgency,
        unit=body.unit,
    )


@router.get("/{code}")
def read_case(code: str, live: Live, principal: LiveReader) -> dict[str, Any]:
    """One case with its timeline and the actions allowed now."""
    return live.cases.get(code, scopes_of(principal))


@router.post("/{code}/{action}", responses=responses(400, 409))
def act_on_case(
    code: str,
    action: str,
    live: Live,
    principal: Operator,
    body: CaseAction | None = None,
) -> dict[str, Any]:
    """One workflow step: file, dispatch, handle, verify, close, rework or cancel."""
    live.cases.get(code, scopes_of(principal))
    note = body.note if body is not None else ""
    return live.cases.act(code, action, principal.name or principal.key_id, live.clock(), note)
