"""Times of the live twin: integer microseconds since the Unix epoch, UTC.

Incoming times are ISO 8601 strings (``2026-11-26T10:00:00Z``, any offset) or epoch
seconds; an interval ``start/end`` counts as its start. Outgoing times are ISO 8601 in UTC
with a ``Z``.
"""

from __future__ import annotations

import datetime as dt
import math
import time

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
#: Epoch seconds of the first and last times ISO 8601 can write (years 1 and 9999).
_FIRST_S = (dt.datetime(1, 1, 1, tzinfo=dt.UTC) - _EPOCH).total_seconds()
_LAST_S = (dt.datetime(9999, 12, 31, 23, 59, 59, tzinfo=dt.UTC) - _EPOCH).total_seconds()


def now_us() -> int:
    """The current time, microseconds since the epoch."""
    return time.time_ns() // 1000


def parse_time(value: object) -> int:
    """Microseconds since the epoch of an ISO 8601 time (or interval start) or epoch seconds.

    Raises
    ------
    ValueError
        If ``value`` is not a time, has no UTC offset, or is not finite.
    """
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a time")
    if isinstance(value, int | float):
        if not math.isfinite(value):
            raise ValueError(f"{value!r} is not a finite time")
        if not _FIRST_S <= value <= _LAST_S:
            raise ValueError(f"{value!r} epoch seconds is outside the years 1..9999")
        return round(float(value) * 1_000_000)
    if not isinstance(value, str):
        raise ValueError(f"{value!r} is not a time")
    text = value.split("/", 1)[0].strip()
    try:
        parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ValueError(f"{value[:60]!r} is not an ISO 8601 time") from None
    if parsed.tzinfo is None:
        raise ValueError(f"{value[:60]!r} has no UTC offset")
    delta = parsed - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def format_time(us: int | None) -> str | None:
    """ISO 8601 UTC (``...Z``) of microseconds since the epoch; ``None`` stays ``None``."""
    if us is None:
        return None
    moment = _EPOCH + dt.timedelta(microseconds=int(us))
    text = moment.isoformat(timespec="microseconds" if us % 1_000_000 else "seconds")
    return text.replace("+00:00", "Z")
