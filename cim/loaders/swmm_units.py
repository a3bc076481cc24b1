"""SWMM's unit systems and the factors that take each quantity to SI: the one table of the
CIM loader (:mod:`cim.loaders.swmm`) and the flood model's reader (:mod:`scenarios.flood.swmm_inp`).

A SWMM file states its ``FLOW_UNITS``; that choice fixes every other unit in the file: CFS,
GPM and MGD mean US customary (feet, acres, inches), CMS, LPS and MLD mean metric (metres,
hectares, millimetres). Everything past the reader is SI: metres, square metres, seconds,
cubic metres per second, rain in metres per second.
"""

from __future__ import annotations

from dataclasses import dataclass

FOOT_M = 0.3048
ACRE_M2 = 4046.8564224
INCH_M = 0.0254

#: flow units -> m3/s per file unit
FLOW_TO_M3S: dict[str, float] = {
    "CFS": FOOT_M**3,
    "GPM": 3.785411784e-3 / 60.0,
    "MGD": 3.785411784e3 / 86400.0,
    "CMS": 1.0,
    "LPS": 1e-3,
    "MLD": 1e3 / 86400.0,
}
US_FLOW_UNITS = frozenset({"CFS", "GPM", "MGD"})


@dataclass(frozen=True)
class UnitSystem:
    """Factors from one file's units to SI.

    Attributes
    ----------
    flow_units : the file's ``FLOW_UNITS`` keyword
    flow : m3/s per flow unit
    length : m per length unit (ft or m)
    area : m2 per subcatchment area unit (acre or ha)
    rain_depth : m per rain depth unit (in or mm)
    """

    flow_units: str
    flow: float
    length: float
    area: float
    rain_depth: float

    @property
    def is_us(self) -> bool:
        """True for US customary files (CFS, GPM, MGD)."""
        return self.flow_units in US_FLOW_UNITS

    @property
    def rain_rate(self) -> float:
        """m/s per rain intensity unit (in/h or mm/h)."""
        return self.rain_depth / 3600.0

    @property
    def volume(self) -> float:
        """m3 per volume unit (ft3 or m3)."""
        return self.length**3

    @property
    def surface_area(self) -> float:
        """m2 per node surface-area unit (ft2 or m2)."""
        return self.length**2


def unit_system(flow_units: str) -> UnitSystem:
    """The unit system a ``FLOW_UNITS`` keyword implies.

    Raises
    ------
    ValueError
        If the keyword is not one of SWMM's six flow units.
    """
    key = flow_units.upper()
    if key not in FLOW_TO_M3S:
        raise ValueError(f"FLOW_UNITS(={flow_units}) must be one of {', '.join(FLOW_TO_M3S)}")
    if key in US_FLOW_UNITS:
        return UnitSystem(key, FLOW_TO_M3S[key], FOOT_M, ACRE_M2, INCH_M)
    return UnitSystem(key, FLOW_TO_M3S[key], 1.0, 1e4, 1e-3)
