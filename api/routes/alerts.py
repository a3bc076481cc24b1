"""``/alerts`` and ``/rules``: threshold rules and the alerts they raise (早预警).

Readers list and read alerts (a pilot those of its subtree); admin, planner and pilot keys
acknowledge and close them; admin and planner keys edit rules.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, Field

from api.errors import responses
from api.live_deps import Live, LiveReader, Operator, RuleEditor, scopes_of
from api.settings import CODE_CHARS, NOTE_CHARS, RULE_LEVELS, TITLE_CHARS
from twin.errors import RequestError
from twin.rules import CasePolicy, Rule
from twin.sta.limits import MAX_INT

router = APIRouter(tags=["alerts"])

#: A rule id in a path: the stores' integers end at ``MAX_INT`` (beyond: 422, not a 500 from
#: the driver).
RuleId = Annotated[int, Path(ge=0, le=MAX_INT, description="rule id")]

#: A level's severity name (``warning``, ``alarm``...).
Severity = Annotated[str, Field(min_length=1, max_length=32)]


class CasePolicyCreate(BaseModel):
    """When an alert of the rule opens a case."""

    min_level: int = Field(1, ge=1, le=RULE_LEVELS)
    class_code: str = Field("", max_length=CODE_CHARS)
    unit: str = Field("", max_length=CODE_CHARS)
    urgency: Literal["urgent", "high", "normal", "low"] = "normal"


class RuleCreate(BaseModel):
    """A new threshold rule: ``levels`` are ``[threshold, severity]`` mildest first (every
    text and list bounded: beyond, 422 naming the field)."""

    name: str = Field(min_length=1, max_length=TITLE_CHARS)
    kind: Literal["high", "low", "rate", "stale"]
    levels: list[tuple[Annotated[float, Field(allow_inf_nan=False)], Severity]] = Field(
        min_length=1, max_length=RULE_LEVELS
    )
    observed_property: str | None = Field(None, max_length=CODE_CHARS)
    code_prefix: str | None = Field(None, max_length=CODE_CHARS)
    hysteresis: float = Field(0.0, ge=0, le=1e12)
    missed: int = Field(3, ge=1, le=10_000)
    open_case: CasePolicyCreate | None = None


class AlertAction(BaseModel):
    """An operator's note on an alert action."""

    note: str = Field("", max_length=NOTE_CHARS)


def _rule_public(rule: Rule) -> dict[str, Any]:
    return {
        "id": rule.id,
        "name": rule.name,
        "kind": rule.kind,
        "levels": [list(level) for level in rule.levels],
        "observed_property": rule.observed_property,
        "code_prefix": rule.code_prefix,
        "hysteresis": rule.hysteresis,
        "missed": rule.missed,
        "open_case": rule.open_case.to_dict() if rule.open_case else None,
    }


@router.get("/rules")
def list_rules(live: Live, principal: LiveReader) -> list[dict[str, Any]]:
    """All rules (a pilot: the rules that can apply to its units — city-wide ones, and
    those under or above its unit codes — not another unit's)."""
    scopes = scopes_of(principal)
    return [
        _rule_public(r)
        for r in live.alerts.rules.values()
        if scopes is None
        or r.code_prefix is None
        or any(r.code_prefix.startswith(s) or s.startswith(r.code_prefix) for s in scopes)
    ]


@router.post("/rules", status_code=201)
def create_rule(body: RuleCreate, live: Live, principal: RuleEditor) -> dict[str, Any]:
    """Add a rule; it applies from the next reading on.

    Raises
    ------
    RequestError
        If the thresholds are not ordered for the rule's kind (400).
    """
    try:
        rule = _rule(body)
    except ValueError as exc:
        raise RequestError(f"rule: {exc}") from None
    return _rule_public(live.alerts.add_rule(rule))


def _rule(body: RuleCreate) -> Rule:
    return Rule(
        0,
        body.name,
        body.kind,
        tuple((float(t), s) for t, s in body.levels),
        body.observed_property,
        body.code_prefix,
        body.hysteresis,
        body.missed,
        CasePolicy(**body.open_case.model_dump()) if body.open_case else None,
    )


@router.delete("/rules/{ident}")
def delete_rule(ident: RuleId, live: Live, principal: RuleEditor) -> dict[str, Any]:
    """Remove a rule (its alerts stay as history).

    Raises
    ------
    NotFoundError
        If there is no such rule (404); an id beyond the stores' integers is 422.
    """
    live.alerts.delete_rule(ident)
    return {"deleted": ident}


@router.get("/alerts")
def list_alerts(
    live: Live,
    principal: LiveReader,
    prefix: Annotated[str, Query(max_length=CODE_CHARS, description="object code prefix")] = "",
    state: Annotated[
        str | None,
        Query(max_length=32, description="open, acknowledged, cleared, closed or active"),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
    source: Annotated[
        Literal["sensor", "drill", "all"],
        Query(description="sensor alerts (default), drill alerts (marked with their drill) or all"),
    ] = "sensor",
) -> list[dict[str, Any]]:
    """Alerts of objects under ``prefix``, newest first: those of sensor rules unless
    ``source`` asks for the alerts drills raised (``drill``) or both (``all``)."""
    return live.alerts.find(prefix, state, scopes_of(principal), limit, source)


@router.get("/alerts/{code}")
def read_alert(code: str, live: Live, principal: LiveReader) -> dict[str, Any]:
    """One alert and its history."""
    return live.alerts.get(code, scopes_of(principal))


@router.post("/alerts/{code}/{action}", responses=responses(409))
def act_on_alert(
    code: str,
    action: Literal["acknowledge", "close"],
    live: Live,
    principal: Operator,
    body: AlertAction | None = None,
) -> dict[str, Any]:
    """Acknowledge or close an alert; 409 if its state does not allow it."""
    live.alerts.get(code, scopes_of(principal))
    note = body.note if body is not None else ""
    return live.alerts.act(code, action, principal.name or principal.key_id, note, live.clock())
