"""Congestion grades of road operation by average speed (data, with its source).

Source: GB/T 33171-2016 城市交通运行状况评价规范 (Evaluation specification for urban traffic
performance), grading of road segment operation by average travel speed (km/h), as tabulated
in the project's standards reference (section 5.3)::

    grade                        快速路 expressway   主干路 arterial   次干路/支路 secondary, branch
    0 畅通 smooth                > 65                > 40              > 35
    1 基本畅通 basically smooth   50-65               30-40             25-35
    2 轻度拥堵 light              35-50               20-30             15-25
    3 中度拥堵 moderate           20-35               15-20             10-15
    4 严重拥堵 severe             <= 20               <= 15             <= 10

Links without a road class (the plain CSV form) are graded by the ratio of speed to free-flow
speed, with the arterial bands read against a 60 km/h design speed (40/60, 30/60, 20/60,
15/60): our derivation, not part of the standard.
"""

from __future__ import annotations

import numpy as np

from scenarios.traffic.spec import FloatArray, IntArray

GRADE_NAMES: tuple[str, ...] = ("smooth", "basically smooth", "light", "moderate", "severe")
GRADE_NAMES_ZH: tuple[str, ...] = ("畅通", "基本畅通", "轻度拥堵", "中度拥堵", "严重拥堵")

#: upper speed bound (km/h, inclusive) of grades 1..4 by road class
SPEED_BANDS_KMH: dict[str, tuple[float, float, float, float]] = {
    "expressway": (65.0, 50.0, 35.0, 20.0),
    "arterial": (40.0, 30.0, 20.0, 15.0),
    "secondary": (35.0, 25.0, 15.0, 10.0),
    "branch": (35.0, 25.0, 15.0, 10.0),
}

#: the same bands as ratios of free-flow speed, for links of unknown class
RATIO_BANDS: tuple[float, float, float, float] = (40 / 60, 30 / 60, 20 / 60, 15 / 60)

#: OpenStreetMap ``highway`` values to the standard's road classes
OSM_ROAD_CLASS: dict[str, str] = {
    "motorway": "expressway",
    "motorway_link": "expressway",
    "trunk": "expressway",
    "trunk_link": "expressway",
    "primary": "arterial",
    "primary_link": "arterial",
    "secondary": "secondary",
    "secondary_link": "secondary",
    "tertiary": "branch",
    "tertiary_link": "branch",
    "residential": "branch",
    "unclassified": "branch",
    "living_street": "branch",
    "service": "branch",
}


def grade_thresholds_mps(road_class: list[str], free_speed_mps: FloatArray) -> FloatArray:
    """(m, 4) float, m/s: the speed at or under which each link reaches grades 1..4."""
    thresholds = np.outer(free_speed_mps, RATIO_BANDS)
    for i, cls in enumerate(road_class):
        bands = SPEED_BANDS_KMH.get(cls)
        if bands is not None:
            thresholds[i] = np.asarray(bands) / 3.6
    return thresholds


def congestion_grades(speed_mps: FloatArray, thresholds_mps: FloatArray) -> IntArray:
    """Grade 0 (smooth) .. 4 (severe) of each speed.

    Parameters
    ----------
    speed_mps : (..., m) float
    thresholds_mps : (m, 4) float, from :func:`grade_thresholds_mps`
    """
    grades: IntArray = (speed_mps[..., None] <= thresholds_mps).sum(axis=-1).astype(np.int64)
    return grades
