"""The SensorThings API 1.1 entity model: entity sets, their properties and relations, as
tables and columns of the live store.

Each relation is one SQL step from a set of source rows (``WHERE`` fragment) to the target
rows, so a navigation path (``Observations(5)/Datastream/Thing``), an ``$expand`` and a
navigation in ``$filter`` (``Datastream/Thing/name``) are nested ``IN (SELECT ...)`` of the
same steps.

A Thing or Datastream is linked to a CIM object by ``properties.cimSite`` and
``properties.cimCode``, kept in the ``site`` and ``code`` columns as well (a Dynamizer-like
link record); a Datastream without its own code takes its Thing's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

#: How a property is kept: plain text, a JSON document, a time (µs), a number, the id.
FieldKind = Literal["text", "json", "time", "number", "id", "result"]

OBSERVATION_NUMERIC = frozenset(
    {
        "http://www.opengis.net/def/observationType/OGC-OM/2.0/OM_Measurement",
        "http://www.opengis.net/def/observationType/OGC-OM/2.0/OM_CountObservation",
    }
)


@dataclass(frozen=True)
class Field:
    """One property of an entity.

    Attributes
    ----------
    name : the SensorThings name (``phenomenonTime``)
    column : the column that holds it
    kind : how it is stored
    required : mandatory on create
    """

    name: str
    column: str
    kind: FieldKind = "text"
    required: bool = True


@dataclass(frozen=True)
class Relation:
    """A navigation property from one entity set to another.

    Attributes
    ----------
    name : the navigation property (``Datastreams``, ``Thing``)
    target : the target entity set's name
    many : a collection (``True``) or one entity
    source_fk : column of the source row holding the target id (to-one relations)
    target_fk : column of the target rows holding the source id (to-many relations)
    link : ``(table, source column, target column)`` of a many-to-many link table
    """

    name: str
    target: str
    many: bool
    source_fk: str | None = None
    target_fk: str | None = None
    link: tuple[str, str, str] | None = None

    def step(self, source_table: str, where: str) -> str:
        """``WHERE`` fragment on the target table for the targets of the source rows that
        satisfy ``where``."""
        inner = f"SELECT id FROM {source_table} WHERE {where}"
        if self.source_fk is not None:
            return f"id IN (SELECT {self.source_fk} FROM {source_table} WHERE {where})"
        if self.target_fk is not None:
            return f"{self.target_fk} IN ({inner})"
        assert self.link is not None
        table, source_col, target_col = self.link
        return f"id IN (SELECT {target_col} FROM {table} WHERE {source_col} IN ({inner}))"


@dataclass(frozen=True)
class EntitySet:
    """An entity set (``Things``) and its entity type (``Thing``)."""

    name: str
    singular: str
    table: str
    fields: tuple[Field, ...]
    relations: tuple[Relation, ...] = field(default_factory=tuple)

    def field(self, name: str) -> Field | None:
        """The property called ``name``, or ``None``."""
        for f in self.fields:
            if f.name == name:
                return f
        return None

    def relation(self, name: str) -> Relation | None:
        """The navigation property called ``name``, or ``None``."""
        for r in self.relations:
            if r.name == name:
                return r
        return None


_PROPS = Field("properties", "properties", "json", required=False)

ENTITY_SETS: dict[str, EntitySet] = {
    s.name: s
    for s in (
        EntitySet(
            "Things",
            "Thing",
            "sta_things",
            (
                Field("name", "name"),
                Field("description", "description"),
                _PROPS,
            ),
            (
                Relation(
                    "Locations",
                    "Locations",
                    True,
                    link=("sta_thing_locations", "thing_id", "location_id"),
                ),
                Relation("Datastreams", "Datastreams", True, target_fk="thing_id"),
            ),
        ),
        EntitySet(
            "Locations",
            "Location",
            "sta_locations",
            (
                Field("name", "name"),
                Field("description", "description"),
                Field("encodingType", "encoding_type"),
                Field("location", "location", "json"),
                _PROPS,
            ),
            (
                Relation(
                    "Things",
                    "Things",
                    True,
                    link=("sta_thing_locations", "location_id", "thing_id"),
                ),
            ),
        ),
        EntitySet(
            "Sensors",
            "Sensor",
            "sta_sensors",
            (
                Field("name", "name"),
                Field("description", "description"),
                Field("encodingType", "encoding_type"),
                Field("metadata", "metadata"),
                _PROPS,
            ),
            (Relation("Datastreams", "Datastreams", True, target_fk="sensor_id"),),
        ),
        EntitySet(
            "ObservedProperties",
            "ObservedProperty",
            "sta_observed_properties",
            (
                Field("name", "name"),
                Field("definition", "definition"),
                Field("description", "description"),
                _PROPS,
            ),
            (Relation("Datastreams", "Datastreams", True, target_fk="observed_property_id"),),
        ),
        EntitySet(
            "Datastreams",
            "Datastream",
            "sta_datastreams",
            (
                Field("name", "name"),
                Field("description", "description"),
                Field("unitOfMeasurement", "unit", "json"),
                Field("observationType", "observation_type"),
                _PROPS,
            ),
            (
                Relation("Thing", "Things", False, source_fk="thing_id"),
                Relation("Sensor", "Sensors", False, source_fk="sensor_id"),
                Relation(
                    "ObservedProperty",
                    "ObservedProperties",
                    False,
                    source_fk="observed_property_id",
                ),
                Relation("Observations", "Observations", True, target_fk="datastream_id"),
            ),
        ),
        EntitySet(
            "Observations",
            "Observation",
            "sta_observations",
            (
                Field("phenomenonTime", "phenomenon_time", "time", required=False),
                Field("resultTime", "result_time", "time", required=False),
                Field("result", "result", "result"),
                Field("parameters", "parameters", "json", required=False),
            ),
            (
                Relation("Datastream", "Datastreams", False, source_fk="datastream_id"),
                Relation("FeatureOfInterest", "FeaturesOfInterest", False, source_fk="feature_id"),
            ),
        ),
        EntitySet(
            "FeaturesOfInterest",
            "FeatureOfInterest",
            "sta_features",
            (
                Field("name", "name"),
                Field("description", "description"),
                Field("encodingType", "encoding_type"),
                Field("feature", "feature", "json"),
                _PROPS,
            ),
            (Relation("Observations", "Observations", True, target_fk="feature_id"),),
        ),
    )
}

#: Entity sets whose rows a pilot sees only inside its scope, with the scope's ``WHERE``
#: fragment builder input: the column holding the CIM code, or how to reach it.
SCOPED_SETS = ("Things", "Datastreams", "Observations", "Locations")


def entity_set(name: str) -> EntitySet:
    """The entity set called ``name``.

    Raises
    ------
    KeyError
        If there is none.
    """
    return ENTITY_SETS[name]
