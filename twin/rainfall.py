"""Rain at the twin's live gauges, as a series a drainage drill can run on.

"This storm, now" — a planner's early judgement starts from what the gauges measured: the
readings of the last ``lookback_s`` (rain intensity, mm/h) and, after them, the latest
intensity held for ``forecast_s`` (persistence, the simplest nowcast), then dry. The series
start at the beginning of the look-back, so the drill's time 0 is ``now - lookback_s``.

A gauge is a CIM object (the SWMM rain gauge imported with its network) with a datastream
whose observed property names rain or precipitation, in ``mm/h``.
"""

from __future__ import annotations

from typing import Any

from cim.errors import TwinError
from twin.live import LiveTwin

#: Observed-property names (lower case, substrings) that measure rain intensity.
RAIN_PROPERTIES = ("rain", "precipitation")
#: Unit symbols accepted as millimetres per hour.
MM_PER_HOUR = ("mm/h", "mm/hr", "mm h-1", "mm.h-1")


def live_gauge_rain(
    live: LiveTwin,
    gauges: dict[str, str],
    now_us: int,
    lookback_s: float = 3600.0,
    forecast_s: float = 3600.0,
    scopes: Any = None,
) -> tuple[dict[str, tuple[tuple[float, float], ...]], dict[str, dict[str, Any]]]:
    """Rain rows ``(t_s, mm/h)`` per gauge name, and per gauge where they came from.

    Parameters
    ----------
    gauges : gauge name -> CIM code of the gauge object
    now_us : the run's "now" (µs since the epoch)
    lookback_s, forecast_s : measured past and persisted future, seconds

    Raises
    ------
    TwinError
        If a gauge has no rain datastream, its unit is not mm/h, or it has never reported.
    """
    if not lookback_s > 0 or not forecast_s >= 0:
        raise TwinError(f"lookback_s(={lookback_s}) must be > 0 and forecast_s(={forecast_s}) >= 0")
    start_us = now_us - int(lookback_s * 1e6)
    rows: dict[str, tuple[tuple[float, float], ...]] = {}
    sources: dict[str, dict[str, Any]] = {}
    for name, code in sorted(gauges.items()):
        streams = [
            s
            for s in live.sensors(code, scopes)
            if s["code"] == code
            and any(p in s["observedProperty"].lower() for p in RAIN_PROPERTIES)
        ]
        if not streams:
            raise TwinError(f"rain gauge {name!r} ({code}) has no live rain datastream")
        stream = streams[0]
        if (stream["unit"] or "").lower() not in MM_PER_HOUR:
            raise TwinError(
                f"rain gauge {name!r}: datastream {stream['datastream']} reports in "
                f"{stream['unit']!r}, not mm/h"
            )
        before = live.state.history(stream["datastream"], 0, start_us + 1)
        readings = live.state.history(stream["datastream"], start_us + 1, now_us + 1)
        last_before = next((v for _, v in reversed(before) if v is not None), None)
        series = [(0.0, max(last_before or 0.0, 0.0))]
        for t, v in readings:
            if v is None:
                continue
            series.append(((t - start_us) / 1e6, max(float(v), 0.0)))
        if last_before is None and len(series) == 1:
            raise TwinError(f"rain gauge {name!r} ({code}) has never reported")
        latest = series[-1][1]
        end = lookback_s + forecast_s
        series.append((lookback_s, latest))  # persistence from now on
        series.append((end, 0.0))
        ordered: dict[float, float] = {}
        for when, value in series:
            ordered[round(when, 3)] = value  # a later row at the same time wins
        rows[name] = tuple(sorted(ordered.items()))
        sources[name] = {
            "code": code,
            "datastream": stream["datastream"],
            "readings": len(readings),
            "latest_mm_h": latest,
        }
    return rows, sources


def areal_rain(
    rows_by_gauge: dict[str, tuple[tuple[float, float], ...]], step_s: float = 60.0
) -> tuple[tuple[float, float], ...]:
    """The mean of several gauges' rain rows on a common ``step_s`` grid (each gauge's rows
    held until its next), ending with the latest end of any gauge: uniform rain over an
    area from the gauges in it, the simplest areal estimate (no weights).

    Raises
    ------
    ValueError
        If there are no gauges or ``step_s`` is not positive.
    """
    if not rows_by_gauge or not step_s > 0:
        raise ValueError("areal rain needs at least one gauge and step_s > 0")
    end = max(rows[-1][0] for rows in rows_by_gauge.values())
    grid = [i * step_s for i in range(int(end // step_s) + 1)]
    if grid[-1] < end:
        grid.append(end)
    means = []
    for t in grid[:-1]:
        values = []
        for rows in rows_by_gauge.values():
            held = [v for when, v in rows if when <= t]
            values.append(held[-1] if held and t < rows[-1][0] else 0.0)
        means.append((t, sum(values) / len(values)))
    return (*means, (grid[-1], 0.0))
