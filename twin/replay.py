"""The replay feed: a recorded observation file published into MQTT at a chosen speed, so a
demo city moves and tests have a known stream.

A recording is CSV with a header: ``offset_s`` (seconds from the start), a value column,
and optionally ``datastream`` (else one datastream is given for the whole file). Each row
becomes one SensorThings Observation on ``v1.1/Datastreams(ID)/Observations`` with
``phenomenonTime = start + offset_s``, published at ``offset_s / speed`` seconds after the
replay starts.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import orjson

from cim.errors import SourceError
from twin.times import format_time

Progress = Callable[[float, str], None]


@dataclass(frozen=True)
class Recording:
    """Rows of a recording, in time order.

    Attributes
    ----------
    offsets_s : (n,) float, seconds from the start
    values : (n,) float, the results
    datastreams : (n,) int64, datastream ids
    """

    offsets_s: np.ndarray
    values: np.ndarray
    datastreams: np.ndarray


def load_recording(path: str | Path, column: str, datastream: int | None = None) -> Recording:
    """Read a recording CSV.

    Parameters
    ----------
    path : the CSV file
    column : the value column
    datastream : the datastream of every row, when the file has no ``datastream`` column

    Raises
    ------
    SourceError
        If the file lacks ``offset_s`` or ``column``, has a non-numeric or non-finite cell,
        or has no datastream for its rows.
    """
    path = Path(path)
    try:
        header = path.read_text(encoding="utf-8").splitlines()[0].split(",")
    except (OSError, IndexError) as exc:
        raise SourceError(path, f"cannot read the recording ({exc})") from None
    names = [h.strip() for h in header]
    for needed in ("offset_s", column):
        if needed not in names:
            raise SourceError(path, f"no column {needed!r} (columns: {', '.join(names)})")
    try:
        table = np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2)
    except ValueError as exc:
        raise SourceError(path, f"a cell is not a number ({exc})") from None
    if table.shape[1] != len(names):
        raise SourceError(path, f"rows have {table.shape[1]} cells, the header {len(names)}")
    if not np.all(np.isfinite(table)):
        line = int(np.flatnonzero(~np.all(np.isfinite(table), axis=1))[0]) + 2
        raise SourceError(path, f"line {line}: a value is not finite")
    if "datastream" in names:
        streams = table[:, names.index("datastream")].astype(np.int64)
    elif datastream is not None:
        streams = np.full(len(table), datastream, dtype=np.int64)
    else:
        raise SourceError(path, "no datastream column: give the datastream id")
    offsets = table[:, names.index("offset_s")]
    order = np.argsort(offsets, kind="stable")
    return Recording(offsets[order], table[order, names.index(column)], streams[order])


def replay(
    recording: Recording,
    publish: Callable[[str, bytes], None],
    start_us: int,
    speed: float = 1.0,
    prefix: str = "",
    sleep: Callable[[float], None] = time.sleep,
    progress: Progress | None = None,
) -> int:
    """Publish every row at its (sped-up) time; returns how many were published.

    Parameters
    ----------
    recording : what to play
    publish : ``(topic, payload)`` sender (an MQTT client's QoS 1 publish)
    start_us : phenomenon time of offset 0, µs since the epoch
    speed : replay speed (10 = ten times faster than recorded)
    prefix : topic prefix
    sleep : how to wait (tests pass a no-op)
    progress : called with (fraction done, message)

    Raises
    ------
    ValueError
        If ``speed`` is not positive.
    """
    if not speed > 0:
        raise ValueError(f"speed(={speed}) must be > 0")
    began = time.monotonic()
    n = len(recording.offsets_s)
    for i in range(n):
        offset = float(recording.offsets_s[i])
        wait = offset / speed - (time.monotonic() - began)
        if wait > 0:
            sleep(wait)
        ds = int(recording.datastreams[i])
        body = {
            "phenomenonTime": format_time(start_us + round(offset * 1e6)),
            "result": float(recording.values[i]),
        }
        publish(f"{prefix}v1.1/Datastreams({ds})/Observations", orjson.dumps(body))
        if progress is not None and (i % 50 == 0 or i == n - 1):
            progress((i + 1) / n, f"{i + 1}/{n} observations")
    return n
