"""Rain a flood drill asks for: a design storm, or the live gauges' readings (resolved by
``prepare`` into the rows it read, so the stored spec reproduces the run)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from cim.errors import TwinError
from scenarios.drills.base import DrillRequestError

#: Most rain gauges one drill reads.
MAX_GAUGES = 100
#: Most ``(t_s, mm/h)`` rows of one gauge (a day of readings every second would be more).
MAX_RAIN_ROWS = 20_000

#: ``(t_s, mm/h)``: an intensity held from ``t_s`` until the next row.
RainRow = tuple[
    Annotated[float, Field(ge=0.0, le=7 * 86_400.0)],
    Annotated[float, Field(ge=0.0, le=1_000.0)],
]
#: Rain rows, time increasing.
RainRows = Annotated[list[RainRow], Field(min_length=1, max_length=MAX_RAIN_ROWS)]


class DesignStorm(BaseModel):
    """A Chicago design storm (:mod:`scenarios.flood.rain`) on every gauge or cell."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    formula: str = Field(
        pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$",
        description="an intensity formula of scenarios.flood.rain (shanghai-2017...)",
    )
    return_period_a: float = Field(gt=0, le=1_000, description="return period, years")
    duration_min: float = Field(gt=0, le=1_440, description="storm duration, minutes")
    peak_ratio: float | None = Field(
        None, ge=0, le=1, description="position of the peak in the storm, 0..1"
    )
    step_min: float = Field(5.0, ge=1, le=60, description="hyetograph block, minutes")


class LiveRainWindow(BaseModel):
    """The window of live gauge rain: measured past, then the latest reading held."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    lookback_s: float = Field(3600.0, gt=0, le=86_400, description="measured past, s")
    forecast_s: float = Field(3600.0, ge=0, le=86_400, description="latest reading held, s")


class LiveRain(BaseModel):
    """``{"live": {"lookback_s", "forecast_s"}}``: rain from the twin's live gauges."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    live: LiveRainWindow


def read_live_rain(
    live: Any, gauges: dict[str, str], rain: LiveRain, site: str | None
) -> tuple[dict[str, list[tuple[float, float]]], dict[str, Any]]:
    """The rows read from the live gauges and where they came from
    (:func:`twin.rainfall.live_gauge_rain`).

    Parameters
    ----------
    live : the live twin (:class:`twin.live.LiveTwin`), or ``None`` when it does not run
    gauges : gauge name -> CIM code of the gauge object
    rain : the window asked for
    site : the site (for messages)

    Returns
    -------
    rows : gauge name -> ``[(t_s, mm/h), ...]``
    sources : ``{"live": True, "lookback_s", "forecast_s", "gauges": {name: ...}}``

    Raises
    ------
    DrillRequestError
        If the live twin is off, there are no gauges, or a gauge cannot be read.
    """
    from twin.rainfall import live_gauge_rain

    if live is None:
        raise DrillRequestError("rain: live rain needs the live twin, which is not running")
    if not gauges:
        raise DrillRequestError(f"rain: no live rain gauge for site {site!r}")
    if len(gauges) > MAX_GAUGES:
        raise DrillRequestError(f"rain: {len(gauges)} gauges is more than {MAX_GAUGES}")
    window = rain.live
    try:
        rows, sources = live_gauge_rain(
            live, gauges, live.clock(), window.lookback_s, window.forecast_s
        )
    except (TypeError, ValueError) as exc:
        raise DrillRequestError(f"rain: {exc}") from None
    except TwinError as exc:
        raise DrillRequestError(f"rain: {exc}") from None
    for name, found in rows.items():
        if len(found) > MAX_RAIN_ROWS:
            raise DrillRequestError(
                f"rain: gauge {name!r} gave {len(found)} rows, more than {MAX_RAIN_ROWS}"
            )
    info = {
        "live": True,
        "lookback_s": window.lookback_s,
        "forecast_s": window.forecast_s,
        "gauges": sources,
    }
    return {k: [(float(t), float(v)) for t, v in found] for k, found in rows.items()}, info
