"""SensorThings entities, paths and query options, on both engines."""

from __future__ import annotations

import pytest
from live_helpers import T0, datastream_of, obs, thing_body

from cim.errors import NotFoundError
from twin.errors import RequestError
from twin.live import LiveTwin
from twin.times import format_time

BASE = "http://twin/sta/v1.1"


def _seed(live: LiveTwin) -> tuple[int, int, int]:
    """Two manholes in grid cell A (one under building A1) and a square in cell B."""
    a = live.sta.create("Things", thing_body("manhole a", "AAA001", "water depth"))
    b = live.sta.create("Things", thing_body("manhole b", "AAA002", "water depth"))
    c = live.sta.create("Things", thing_body("square c", "BBB001", "crowd density", "p/m2"))
    for thing, values in ((a, (0.02, 0.05, 0.11)), (b, (0.0, 0.01, 0.2)), (c, (1.5, 2.5, 4.2))):
        ds = datastream_of(live, thing)
        live.ingestor.ingest([obs(ds, 60 * i, v) for i, v in enumerate(values)], "test")
    return a, b, c


def test_deep_insert_creates_every_entity_and_links(live: LiveTwin) -> None:
    thing = live.sta.create("Things", thing_body("manhole a", "AAA001", "water depth"))
    counts = {
        name: live.sta.read(name, {"$count": "true", "$top": "0"}, BASE)["@iot.count"]
        for name in ("Things", "Locations", "Datastreams", "Sensors", "ObservedProperties")
    }
    assert counts == dict.fromkeys(counts, 1)
    entity = live.sta.read(
        f"Things({thing})", {"$expand": "Datastreams($expand=ObservedProperty),Locations"}, BASE
    )
    assert entity["@iot.selfLink"] == f"{BASE}/Things({thing})"
    assert entity["properties"]["cimCode"] == "AAA001"
    assert entity["Locations"][0]["location"]["coordinates"] == [4.31, 52.07]
    datastream = entity["Datastreams"][0]
    assert datastream["ObservedProperty"]["name"] == "water depth"
    # a Datastream without its own code takes its Thing's
    assert datastream["properties"]["cimCode"] == "AAA001"
    assert live.sta.read(f"Things({thing})/name/$value", {}, BASE) == "manhole a"
    located = live.sta.read(f"Locations({entity['Locations'][0]['@iot.id']})/Things", {}, BASE)
    assert [t["@iot.id"] for t in located["value"]] == [thing]


def test_link_by_id_reuses_sensor_and_property(live: LiveTwin) -> None:
    first = live.sta.create("Things", thing_body("manhole a", "AAA001", "water depth"))
    ds = live.sta.read(f"Things({first})/Datastreams", {"$expand": "Sensor,ObservedProperty"}, BASE)
    sensor = ds["value"][0]["Sensor"]["@iot.id"]
    prop = ds["value"][0]["ObservedProperty"]["@iot.id"]
    body = thing_body("manhole b", "AAA002", "water depth")
    body["Datastreams"][0]["Sensor"] = {"@iot.id": sensor}
    body["Datastreams"][0]["ObservedProperty"] = {"@iot.id": prop}
    live.sta.create("Things", body)
    assert live.sta.read("Sensors", {"$count": "true"}, BASE)["@iot.count"] == 1
    shared = live.sta.read(f"ObservedProperties({prop})/Datastreams", {"$count": "true"}, BASE)
    assert shared["@iot.count"] == 2
    body["Datastreams"][0]["Sensor"] = {"@iot.id": 999}
    with pytest.raises(NotFoundError, match="999"):
        live.sta.create("Things", body)
    # the failed deep insert left nothing behind
    assert live.sta.read("Things", {"$count": "true"}, BASE)["@iot.count"] == 2


def test_filter_comparisons_logic_time_ranges_and_navigation(live: LiveTwin) -> None:
    _seed(live)

    def ids(path: str, text: str) -> list[float]:
        rows = live.sta.read(path, {"$filter": text, "$orderby": "result"}, BASE)["value"]
        return [r["result"] for r in rows]

    assert ids("Observations", "result gt 0.1 and result lt 1") == [0.11, 0.2]
    assert ids("Observations", "result le 0.0 or result ge 4") == [0.0, 4.2]
    assert ids("Observations", "not (result lt 2)") == [2.5, 4.2]
    t1, t2 = format_time(T0 + 60_000_000), format_time(T0 + 120_000_000)
    assert ids("Observations", f"phenomenonTime ge {t1} and phenomenonTime lt {t2}") == [
        0.01,
        0.05,
        2.5,
    ]
    assert ids("Observations", "Datastream/ObservedProperty/name eq 'crowd density'") == [
        1.5,
        2.5,
        4.2,
    ]
    assert ids("Observations", "Datastream/Thing/properties/cimCode eq 'AAA002'") == [
        0.0,
        0.01,
        0.2,
    ]
    # all sensors of one object subtree: one query
    found = live.sta.read("Datastreams", {"$filter": "startswith(properties/cimCode,'AAA')"}, BASE)
    assert sorted(d["properties"]["cimCode"] for d in found["value"]) == ["AAA001", "AAA002"]
    things = live.sta.read(
        "Things", {"$filter": "Datastreams/name eq 'square c crowd density'"}, BASE
    )
    assert [t["name"] for t in things["value"]] == ["square c"]
    units = live.sta.read("Datastreams", {"$filter": "unitOfMeasurement/symbol eq 'p/m2'"}, BASE)
    assert len(units["value"]) == 1
    with pytest.raises(RequestError, match="no property 'colour'"):
        live.sta.read("Things", {"$filter": "colour eq 'red'"}, BASE)
    with pytest.raises(RequestError, match=r"\$filter"):
        live.sta.read("Things", {"$filter": "name eq"}, BASE)


def test_paging_orderby_count_and_next_link(live: LiveTwin) -> None:
    _seed(live)
    params = {"$top": "4", "$orderby": "result desc", "$count": "true"}
    page = live.sta.read("Observations", params, BASE)
    assert page["@iot.count"] == 9
    assert [o["result"] for o in page["value"]] == [4.2, 2.5, 1.5, 0.2]
    link = page["@iot.nextLink"]
    assert link.startswith(f"{BASE}/Observations?") and "%24skip=4" not in link
    assert "$skip=4" in link and "$top=4" in link
    second = live.sta.read("Observations", {**params, "$skip": "4"}, BASE)
    assert [o["result"] for o in second["value"]] == [0.11, 0.05, 0.02, 0.01]
    last = live.sta.read("Observations", {**params, "$skip": "8"}, BASE)
    assert "@iot.nextLink" not in last and [o["result"] for o in last["value"]] == [0.0]
    with pytest.raises(RequestError, match=r"\$top"):
        live.sta.read("Observations", {"$top": "-1"}, BASE)


def test_expand_latest_observation_per_datastream(live: LiveTwin) -> None:
    _seed(live)
    things = live.sta.read(
        "Things",
        {
            "$orderby": "name",
            "$select": "name",
            "$expand": "Datastreams/Observations($orderby=phenomenonTime desc;$top=1)",
        },
        BASE,
    )["value"]
    latest = {t["name"]: t["Datastreams"][0]["Observations"][0]["result"] for t in things}
    assert latest == {"manhole a": 0.11, "manhole b": 0.2, "square c": 4.2}
    assert set(things[0]) >= {"@iot.id", "name", "Datastreams"} and "description" not in things[0]
    obs_entity = live.sta.read("Observations(1)/Datastream/Thing", {}, BASE)
    assert obs_entity["name"] == "manhole a"


def test_patch_and_delete(live: LiveTwin) -> None:
    a, _, _ = _seed(live)
    live.sta.update(f"Things({a})", {"name": "manhole a2", "properties": {"cimCode": "AAA009"}})
    thing = live.sta.read(f"Things({a})", {}, BASE)
    assert thing["name"] == "manhole a2" and thing["properties"]["cimCode"] == "AAA009"
    with pytest.raises(RequestError, match="mandatory"):
        live.sta.update(f"Things({a})", {"name": None})
    live.sta.delete(f"Things({a})")
    with pytest.raises(NotFoundError):
        live.sta.read(f"Things({a})", {}, BASE)
    assert live.sta.read("Observations", {"$count": "true"}, BASE)["@iot.count"] == 6
    with pytest.raises(NotFoundError):
        live.sta.delete(f"Things({a})")


def test_pilot_scope_limits_things_datastreams_observations(live: LiveTwin) -> None:
    _seed(live)
    scoped = live.sta.read("Observations", {"$count": "true"}, BASE, scopes=("AAA002",))
    assert scoped["@iot.count"] == 3
    assert live.sta.read("Things", {"$count": "true"}, BASE, scopes=("BBB",))["@iot.count"] == 1
    assert live.sta.read("Locations", {"$count": "true"}, BASE, scopes=("ZZZ",))["@iot.count"] == 0
    with pytest.raises(NotFoundError):
        live.sta.read("Things(1)", {}, BASE, scopes=("BBB",))


def test_create_observations_data_array(live: LiveTwin) -> None:
    ds = datastream_of(live, live.sta.create("Things", thing_body("m", "AAA001", "water depth")))
    links = live.create_observations(
        [
            {
                "Datastream": {"@iot.id": ds},
                "components": ["phenomenonTime", "result"],
                "dataArray@iot.count": 3,
                "dataArray": [
                    [format_time(T0), 0.1],
                    [format_time(T0 + 60_000_000), "high"],
                    [format_time(T0 + 120_000_000), 0.3],
                ],
            }
        ]
    )
    assert links[1] == "error"
    assert links[0].startswith("Observations(") and links[2].startswith("Observations(")
    assert live.ingestor.counters["dead: not a number"] == 1
    with pytest.raises(RequestError, match="components"):
        live.create_observations([{"Datastream": {"@iot.id": ds}}])


def test_feature_of_interest_comes_from_the_things_location(live: LiveTwin) -> None:
    thing = live.sta.create("Things", thing_body("manhole a", "AAA001", "water depth"))
    ds = datastream_of(live, thing)
    live.ingestor.ingest([obs(ds, 0, 0.1), obs(ds, 60, 0.2)], "test")
    features = live.sta.read("FeaturesOfInterest", {"$expand": "Observations"}, BASE)["value"]
    assert len(features) == 1  # one FoI for the location, shared by the readings
    assert features[0]["feature"] == {"type": "Point", "coordinates": [4.31, 52.07]}
    assert [o["result"] for o in features[0]["Observations"]] == [0.1, 0.2]
    reading = live.sta.read("Observations(1)/FeatureOfInterest", {}, BASE)
    assert reading["name"] == "manhole a location"
    bad = live.ingestor.ingest([{**obs(ds, 120, 0.3), "FeatureOfInterest": "here"}], "test")
    assert "FeatureOfInterest" in bad.rejected[0][1]


def test_filters_that_mix_types_are_request_errors(live: LiveTwin) -> None:
    _seed(live)
    for path, text in (("Observations", "result eq 'wet'"), ("Things", "name gt 5")):
        try:
            found = live.sta.read(path, {"$filter": text}, BASE)
        except RequestError as exc:  # PostgreSQL refuses to compare across types: a 400
            assert "$filter" in str(exc)
        else:  # SQLite compares across types (numbers sort before text)
            assert isinstance(found["value"], list)
