"""Materials by object kind: a calm palette that reads well on a wall display."""

from __future__ import annotations

import hashlib
from typing import Any

#: Base colours (linear RGB, 0..1) of the kinds the loaders produce.
KIND_COLOURS: dict[str, tuple[float, float, float]] = {
    "Building": (0.86, 0.84, 0.80),
    "BuildingPart": (0.86, 0.84, 0.80),
    "BuildingInstallation": (0.70, 0.68, 0.64),
    "Bridge": (0.55, 0.52, 0.50),
    "Road": (0.30, 0.30, 0.32),
    "Walkway": (0.62, 0.58, 0.52),
    "PedestrianArea": (0.66, 0.62, 0.56),
    "Manhole": (0.25, 0.25, 0.28),
    "StorageUnit": (0.30, 0.38, 0.48),
    "Outfall": (0.20, 0.42, 0.70),
    "Conduit": (0.35, 0.48, 0.60),
    "Pump": (0.80, 0.45, 0.20),
    "Orifice": (0.80, 0.45, 0.20),
    "Weir": (0.80, 0.45, 0.20),
    "Outlet": (0.80, 0.45, 0.20),
    "Subcatchment": (0.55, 0.66, 0.55),
    "Railway": (0.35, 0.30, 0.28),
    "TransportSquare": (0.45, 0.45, 0.47),
    "WaterBody": (0.20, 0.42, 0.70),
    "PlantCover": (0.30, 0.55, 0.28),
    "SolitaryVegetationObject": (0.22, 0.50, 0.22),
    "LandUse": (0.62, 0.60, 0.45),
    "TINRelief": (0.48, 0.56, 0.40),
    "DEM": (0.48, 0.56, 0.40),
    "GenericCityObject": (0.65, 0.62, 0.70),
    "CityFurniture": (0.80, 0.55, 0.20),
    "Component": (0.80, 0.55, 0.20),
}


def kind_colour(kind: str) -> tuple[float, float, float]:
    """The base colour of a kind; unlisted kinds get a stable muted colour from their name."""
    known = KIND_COLOURS.get(kind)
    if known is not None:
        return known
    digest = hashlib.sha256(kind.encode()).digest()
    r, g, b = (0.45 + 0.35 * digest[i] / 255 for i in range(3))
    return (r, g, b)


def kind_material(kind: str) -> dict[str, Any]:
    """A glTF material for ``kind``: matte, double-sided (source rings are not always
    oriented consistently)."""
    r, g, b = kind_colour(kind)
    return {
        "name": kind,
        "pbrMetallicRoughness": {
            "baseColorFactor": [r, g, b, 1.0],
            "metallicFactor": 0.0,
            "roughnessFactor": 0.9,
        },
        "doubleSided": True,
    }
