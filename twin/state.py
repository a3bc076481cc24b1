"""State of the live twin: latest value per datastream and per CIM object, history and its
downsampled aggregates, retention.

History is the ``sta_observations`` table. :meth:`LiveState.compact` rolls raw observations
older than the retention horizon into ``live_rollups`` (count, min, max, sum per datastream
and interval) and deletes them; :meth:`LiveState.aggregates` merges rolled-up and raw
buckets, so min/max/mean per interval stay exact across the horizon.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from twin.db import LiveDb
from twin.times import format_time


def _escape(prefix: str) -> str:
    return prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def scope_clause(scopes: Sequence[str] | None, column: str = "code") -> tuple[str, list[str]]:
    """``WHERE`` fragment keeping rows whose ``column`` starts with one of ``scopes``
    (``None``: every row)."""
    if scopes is None:
        return "1 = 1", []
    if not scopes:
        return "1 = 0", []
    text = " OR ".join(f"{column} LIKE ? ESCAPE '\\'" for _ in scopes)
    return f"({text})", [_escape(s) for s in scopes]


class LiveState:
    """Queries of latest values, history and aggregates.

    Parameters
    ----------
    db : the live store
    """

    def __init__(self, db: LiveDb) -> None:
        self.db = db

    def latest(
        self, prefix: str = "", scopes: Sequence[str] | None = None, limit: int = 10_000
    ) -> list[dict[str, Any]]:
        """Latest value of every datastream linked to an object whose code starts with
        ``prefix``, ordered by code then datastream (``None`` where nothing came yet)."""
        scope, params = scope_clause(scopes, "d.code")
        rows = self.db.query(
            "SELECT d.id, d.name, d.site, d.code, p.name, d.unit, l.phenomenon_time, l.result, "
            "l.result_json FROM sta_datastreams d "
            "JOIN sta_observed_properties p ON p.id = d.observed_property_id "
            "LEFT JOIN live_latest l ON l.datastream_id = d.id "
            f"WHERE d.code LIKE ? ESCAPE '\\' AND {scope} ORDER BY d.code, d.id LIMIT ?",
            [_escape(prefix), *params, limit],
        )
        out = []
        for ds, name, site, code, prop, unit, t, value, result_json in rows:
            out.append(
                {
                    "datastream": int(ds),
                    "name": name,
                    "site": site,
                    "code": code,
                    "observedProperty": prop,
                    "unitOfMeasurement": _json(unit),
                    "phenomenonTime": format_time(t),
                    "result": _json(result_json) if result_json is not None else value,
                }
            )
        return out

    def object_state(self, code: str, scopes: Sequence[str] | None = None) -> dict[str, Any]:
        """The aggregated latest state of an object and everything under it: per observed
        property the number of datastreams, how many report, min/max/mean of their latest
        numeric values and the newest time."""
        scope, params = scope_clause(scopes, "d.code")
        rows = self.db.query(
            "SELECT p.name, COUNT(d.id), COUNT(l.result), MIN(l.result), MAX(l.result), "
            "AVG(l.result), MAX(l.phenomenon_time) FROM sta_datastreams d "
            "JOIN sta_observed_properties p ON p.id = d.observed_property_id "
            "LEFT JOIN live_latest l ON l.datastream_id = d.id "
            f"WHERE d.code LIKE ? ESCAPE '\\' AND {scope} GROUP BY p.name ORDER BY p.name",
            [_escape(code), *params],
        )
        properties = {
            str(name): {
                "datastreams": int(n),
                "reporting": int(k),
                "min": _float(lo),
                "max": _float(hi),
                "mean": _float(mean),
                "newest": format_time(t),
            }
            for name, n, k, lo, hi, mean, t in rows
        }
        return {"code": code, "properties": properties}

    def history(
        self, datastream: int, start_us: int, end_us: int, limit: int = 10_000
    ) -> list[tuple[int, float | None]]:
        """Raw observations ``start <= t < end`` of one datastream in time order, as
        ``(µs, value)``."""
        rows = self.db.query(
            "SELECT phenomenon_time, result FROM sta_observations WHERE datastream_id = ? "
            "AND phenomenon_time >= ? AND phenomenon_time < ? ORDER BY phenomenon_time LIMIT ?",
            (datastream, start_us, end_us, limit),
        )
        return [(int(t), _float(v)) for t, v in rows]

    def aggregates(
        self, datastream: int, start_us: int, end_us: int, interval_s: int
    ) -> list[dict[str, Any]]:
        """``n, min, max, mean`` per interval of one datastream's numeric results, buckets
        aligned to the epoch, raw and rolled-up history merged.

        Raises
        ------
        ValueError
            If ``interval_s`` is not a positive integer.
        """
        if interval_s <= 0:
            raise ValueError(f"interval_s(={interval_s}) must be > 0")
        step = interval_s * 1_000_000
        buckets: dict[int, list[float]] = {}
        raw = self.db.query(
            "SELECT phenomenon_time - phenomenon_time % ?, COUNT(result), MIN(result), "
            "MAX(result), SUM(result) FROM sta_observations WHERE datastream_id = ? "
            "AND phenomenon_time >= ? AND phenomenon_time < ? AND result IS NOT NULL "
            "GROUP BY 1",
            (step, datastream, start_us, end_us),
        )
        rolled = self.db.query(
            "SELECT bucket - bucket % ?, SUM(n), MIN(vmin), MAX(vmax), SUM(vsum) "
            "FROM live_rollups WHERE datastream_id = ? AND bucket >= ? AND bucket < ? "
            "AND ? % interval_s = 0 GROUP BY 1",
            (step, datastream, start_us, end_us, interval_s),
        )
        for bucket, n, lo, hi, total in [*raw, *rolled]:
            if not n:
                continue
            key = int(bucket)
            have = buckets.get(key)
            if have is None:
                buckets[key] = [float(n), float(lo), float(hi), float(total)]
            else:
                have[0] += float(n)
                have[1] = min(have[1], float(lo))
                have[2] = max(have[2], float(hi))
                have[3] += float(total)
        return [
            {
                "start": format_time(b),
                "n": int(v[0]),
                "min": v[1],
                "max": v[2],
                "mean": v[3] / v[0],
            }
            for b, v in sorted(buckets.items())
        ]

    def compact(self, now_us: int, retention_s: int, rollup_interval_s: int = 60) -> int:
        """Roll numeric observations older than ``retention_s`` (whole intervals only) into
        ``rollup_interval_s`` aggregates and delete them; returns how many were removed.

        Raises
        ------
        ValueError
            If a duration is not positive.
        """
        if retention_s <= 0 or rollup_interval_s <= 0:
            raise ValueError("retention_s and rollup_interval_s must be > 0")
        step = rollup_interval_s * 1_000_000
        cutoff = now_us - retention_s * 1_000_000
        cutoff -= cutoff % step
        with self.db.transaction() as cur:
            cur.execute(
                self.db.sql(
                    "INSERT INTO live_rollups (datastream_id, interval_s, bucket, n, vmin, vmax, "
                    "vsum) SELECT datastream_id, ?, phenomenon_time - phenomenon_time % ?, "
                    "COUNT(*), MIN(result), MAX(result), SUM(result) FROM sta_observations "
                    "WHERE phenomenon_time < ? AND result IS NOT NULL "
                    "GROUP BY 1, 3 "
                    "ON CONFLICT (datastream_id, interval_s, bucket) DO UPDATE SET "
                    "n = live_rollups.n + excluded.n, "
                    "vmin = CASE WHEN excluded.vmin < live_rollups.vmin THEN excluded.vmin "
                    "ELSE live_rollups.vmin END, "
                    "vmax = CASE WHEN excluded.vmax > live_rollups.vmax THEN excluded.vmax "
                    "ELSE live_rollups.vmax END, vsum = live_rollups.vsum + excluded.vsum"
                ),
                (rollup_interval_s, step, cutoff),
            )
            cur.execute(
                self.db.sql("DELETE FROM sta_observations WHERE phenomenon_time < ?"), (cutoff,)
            )
            return int(cur.rowcount)


def _float(value: Any) -> float | None:
    return float(value) if value is not None else None


def _json(text: Any) -> Any:
    return orjson.loads(text) if text is not None else None
