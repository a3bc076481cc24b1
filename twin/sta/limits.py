"""Bounds of one SensorThings request: what a ``$filter`` may hold, how many entities an
answer may carry, how long a statement may run.

Each bound is a setting of the API (``api.settings.Settings.sta_*``, environment variable in
:data:`ENV`), handed to :class:`~twin.sta.service.SensorThings` by the live twin and
enforced on every read: the ``$filter`` parser checks length, depth and conditions
(:mod:`twin.sta.filter`), the options parser ``$top`` and ``$expand`` depth
(:mod:`twin.sta.options`), and the service counts each read's entities, bytes and time in a
:class:`Cost` (its statements stop at the deadline, :meth:`twin.db.LiveDb.read`). A request
beyond one is refused with :class:`~twin.errors.LimitError` (400) or, for the statement
timeout, :class:`~twin.errors.QueryTimeoutError` (503), both naming the setting.
``docs/limits.md`` lists them; ADR 0020 says why.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from twin.db import Deadline
from twin.errors import LimitError, format_bound

#: The largest integer the stores hold (SQLite ``INTEGER``, PostgreSQL ``BIGINT``).
MAX_INT = 2**63 - 1

#: Bound -> the environment variable that sets it.
ENV = {
    "filter_max_chars": "TWIN_STA_FILTER_MAX_CHARS",
    "filter_max_depth": "TWIN_STA_FILTER_MAX_DEPTH",
    "filter_max_terms": "TWIN_STA_FILTER_MAX_TERMS",
    "max_top": "TWIN_STA_MAX_TOP",
    "expand_max_depth": "TWIN_STA_EXPAND_MAX_DEPTH",
    "max_entities": "TWIN_STA_MAX_ENTITIES",
    "max_answer_bytes": "TWIN_STA_MAX_ANSWER_BYTES",
    "timeout_s": "TWIN_STA_TIMEOUT_S",
}


@dataclass(frozen=True)
class StaLimits:
    """The bounds of SensorThings requests.

    Attributes
    ----------
    filter_max_chars : longest ``$filter``, characters
    filter_max_depth : deepest nesting of a ``$filter`` (parentheses, ``not``, function calls
        and chained arithmetic, each one level)
    filter_max_terms : most conditions (comparisons and boolean functions) in a ``$filter``;
        OR-ed equalities of one property are sent to the store as one ``IN`` list
    max_top : the largest ``$top``, at any level of ``$expand``
    expand_max_depth : how deep ``$expand`` may nest (``Things?$expand=Datastreams/
        Observations`` is 2)
    max_entities : most entities one answer holds, expanded ones included
    max_answer_bytes : about the largest answer, bytes (the stored values of its entities,
        expanded ones included, and their links)
    timeout_s : longest one SensorThings read (all its statements together) may run, seconds
    """

    filter_max_chars: int = 8_192
    filter_max_depth: int = 32
    filter_max_terms: int = 500
    max_top: int = 10_000
    expand_max_depth: int = 3
    max_entities: int = 20_000
    max_answer_bytes: int = 32 << 20
    timeout_s: float = 5.0

    def name(self, bound: str) -> str:
        """How a message names ``bound``: its environment variable and value."""
        return f"{ENV[bound]}={format_bound(getattr(self, bound))}"


class Cost:
    """What one read may still spend: entities and bytes in its answer (expanded ones
    included) and time (all its statements share one deadline).

    Parameters
    ----------
    limits : the bounds of the request
    """

    def __init__(self, limits: StaLimits) -> None:
        self.limits = limits
        self.entities_left = limits.max_entities
        self.bytes_left = limits.max_answer_bytes
        self.deadline = Deadline.after(limits.timeout_s, ENV["timeout_s"])

    def take(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """Count ``rows`` into the answer: one entity each, and their size (stored text and
        numbers, plus :data:`ENTITY_BYTES` of keys and links).

        Raises
        ------
        LimitError
            If the answer would hold more than ``limits.max_entities`` entities or about
            ``limits.max_answer_bytes`` bytes.
        """
        self.entities_left -= len(rows)
        if self.entities_left < 0:
            bound = self.limits.max_entities
            raise LimitError(
                ENV["max_entities"],
                bound,
                f"the answer would hold more than {bound} entities, expanded ones included: "
                "lower $top, at the top or inside $expand",
            )
        self.bytes_left -= sum(
            ENTITY_BYTES + sum(len(v) if isinstance(v, str) else 8 for v in row.values())
            for row in rows
        )
        if self.bytes_left < 0:
            bound = self.limits.max_answer_bytes
            raise LimitError(
                ENV["max_answer_bytes"],
                bound,
                f"the answer would be larger than {bound} bytes: lower $top, at the top or "
                "inside $expand",
            )


#: Bytes of an entity's keys, self link and navigation links, beside its values.
ENTITY_BYTES = 256
