"""Threshold rules (早发现, 早预警): which level a value is at, with hysteresis.

A rule applies to the datastreams of one observed property, of one object subtree (code
prefix), or both. Its ``levels`` are ``(threshold, severity)`` pairs from the mildest to the
worst: crowd density ``[(2, "yellow"), (4, "orange"), (5, "red"), (6, "purple")]`` persons
per m², road water depth ``[(0.15, "red")]`` metres.

- ``high``: level k is reached when ``value >= threshold_k``;
- ``low``: when ``value <= threshold_k`` (thresholds descending);
- ``rate``: on ``|dvalue / dt|`` per second between two successive latest values;
- ``stale``: when no reading came for ``missed`` intervals of the datastream
  (``properties.intervalS``), checked by a periodic sweep over all datastreams at once.

Hysteresis: a level already reached is kept until the value falls below its threshold by
more than ``hysteresis`` (rises above it, for ``low``), so a value hovering on a threshold
does not open and close alerts at every reading.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

RuleKind = Literal["high", "low", "rate", "stale"]
KINDS: tuple[str, ...] = ("high", "low", "rate", "stale")


@dataclass(frozen=True)
class CasePolicy:
    """When an alert of a rule opens a case, and what kind of case.

    Attributes
    ----------
    min_level : the alert level (1 = mildest) from which a case is opened
    class_code : event or component class code of the case
    unit : responsible unit
    urgency : ``urgent``, ``high``, ``normal`` or ``low``
    """

    min_level: int = 1
    class_code: str = ""
    unit: str = ""
    urgency: str = "normal"

    def to_dict(self) -> dict[str, Any]:
        """JSON shape."""
        return {
            "min_level": self.min_level,
            "class_code": self.class_code,
            "unit": self.unit,
            "urgency": self.urgency,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CasePolicy:
        """From the JSON shape.

        Raises
        ------
        ValueError
            If a member has the wrong type.
        """
        policy = cls(
            min_level=int(data.get("min_level", 1)),
            class_code=str(data.get("class_code", "")),
            unit=str(data.get("unit", "")),
            urgency=str(data.get("urgency", "normal")),
        )
        if policy.min_level < 1:
            raise ValueError(f"open_case.min_level(={policy.min_level}) must be >= 1")
        return policy


@dataclass(frozen=True)
class Rule:
    """A threshold rule.

    Attributes
    ----------
    id : its id in the store (0 before it is stored)
    name : human name
    kind : ``high``, ``low``, ``rate`` or ``stale``
    levels : ``(threshold, severity)`` mildest first; ``stale`` rules have one level
        whose threshold is unused
    observed_property : applies to datastreams of this observed property name, or any
    code_prefix : applies to datastreams of objects under this code, or any
    hysteresis : in the unit of the value (per second for ``rate``)
    missed : intervals without a reading before a ``stale`` rule fires
    open_case : whether and which case an alert of this rule opens
    """

    id: int
    name: str
    kind: RuleKind
    levels: tuple[tuple[float, str], ...]
    observed_property: str | None = None
    code_prefix: str | None = None
    hysteresis: float = 0.0
    missed: int = 3
    open_case: CasePolicy | None = None
    _thresholds: Any = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind(={self.kind!r}) must be one of {', '.join(KINDS)}")
        if not self.levels:
            raise ValueError("a rule needs at least one level")
        values = np.array([t for t, _ in self.levels], dtype=float)
        if not np.all(np.isfinite(values)):
            raise ValueError("thresholds must be finite")
        # neighbours compared, not subtracted: the step between -1e308 and 1e308 overflows
        before, after = values[:-1], values[1:]
        if self.kind == "low" and np.any(after >= before):
            raise ValueError("thresholds of a low rule must fall from the mildest level")
        if self.kind in ("high", "rate") and np.any(after <= before):
            raise ValueError("thresholds must rise from the mildest level")
        if self.hysteresis < 0:
            raise ValueError(f"hysteresis(={self.hysteresis}) must be >= 0")
        if self.missed < 1:
            raise ValueError(f"missed(={self.missed}) must be >= 1")
        object.__setattr__(self, "_thresholds", values)

    def applies(self, observed_property: str, code: str | None) -> bool:
        """Whether the rule watches a datastream of this property and object."""
        if self.observed_property is not None and self.observed_property != observed_property:
            return False
        return self.code_prefix is None or (code is not None and code.startswith(self.code_prefix))

    def severity(self, level: int) -> str:
        """The severity name of a level (``"normal"`` for 0)."""
        return self.levels[level - 1][1] if level > 0 else "normal"

    def levels_of(self, values: np.ndarray, current: np.ndarray) -> np.ndarray:
        """:meth:`level` of many values at once.

        Parameters
        ----------
        values : (n,) float, values (absolute rates for ``rate`` rules)
        current : (n,) int, the current level of each

        Returns
        -------
        (n,) int64
        """
        thresholds = self._thresholds
        k = np.arange(1, len(thresholds) + 1)
        below_current = k[None, :] <= current[:, None]
        if self.kind == "low":
            raw = np.count_nonzero(values[:, None] <= thresholds[None, :], axis=1)
            kept = (values[:, None] < thresholds[None, :] + self.hysteresis) & below_current
        else:
            raw = np.count_nonzero(values[:, None] >= thresholds[None, :], axis=1)
            kept = (values[:, None] > thresholds[None, :] - self.hysteresis) & below_current
        # levels are held as a prefix: count up to the first level not kept
        held = np.cumprod(kept | ~below_current, axis=1) * below_current
        return np.asarray(np.maximum(raw, held.sum(axis=1)), dtype=np.int64)

    def level(self, value: float, current: int = 0) -> int:
        """The level of ``value`` (0 = normal) given the ``current`` level, with hysteresis.

        For ``rate`` rules pass the absolute rate of change per second.
        """
        thresholds = self._thresholds
        if self.kind == "low":
            raw = int(np.count_nonzero(value <= thresholds))
            held = int(np.count_nonzero(value < thresholds[:current] + self.hysteresis))
        else:
            raw = int(np.count_nonzero(value >= thresholds))
            held = int(np.count_nonzero(value > thresholds[:current] - self.hysteresis))
        return max(raw, min(current, held))


def stale_mask(
    latest_us: np.ndarray, interval_s: np.ndarray, missed: int, now_us: int
) -> np.ndarray:
    """Which datastreams have been silent for more than ``missed`` intervals.

    Parameters
    ----------
    latest_us : (n,) int64, time of each datastream's latest reading, µs
        (a datastream that never reported counts from ``now_us``: it is not stale yet)
    interval_s : (n,) float, expected reporting interval, seconds (NaN: no interval, never
        stale)
    missed : intervals allowed to pass
    now_us : the current time, µs

    Returns
    -------
    (n,) bool
    """
    age_s = (now_us - latest_us.astype(np.int64)) / 1e6
    with np.errstate(invalid="ignore"):
        return np.asarray(age_s > missed * interval_s, dtype=bool)
