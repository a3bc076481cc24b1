"""The Den Haag sample served by a test client: what the API tests share besides fixtures."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

from api.settings import Settings
from cim.model import CimObject

with warnings.catch_warnings():
    # starlette asks for httpx2 and warns when it falls back to httpx; both work here
    warnings.filterwarnings("ignore", message=r".*httpx2")
    from fastapi.testclient import TestClient

__all__ = ["DENHAAG", "SITE", "TestClient", "Twin"]

SITE = "denhaag"
DENHAAG = Path(__file__).parents[2] / "assets" / "denhaag_01" / "denhaag_01_lod2.city.json"


@dataclass(frozen=True)
class Twin:
    """A running API over the Den Haag sample, with what the tests need to know of it."""

    client: TestClient
    settings: Settings
    keys: dict[str, str]
    building: CimObject
    other_building: CimObject
    parts: list[CimObject]
    objects: list[CimObject]

    def headers(self, role: str) -> dict[str, str]:
        """The ``X-API-Key`` header of the key of ``role``."""
        return {"X-API-Key": self.keys[role]}
