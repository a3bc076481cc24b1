"""How drills grade what they found into drill alerts (:class:`twin.alerts.DrillAlert`).

A run only returns its alerts; the runner raises them in the live twin (when it runs).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from twin.alerts import DrillAlert

#: Depth above which a closed road or a flooded building is an alarm, not a warning, m.
FLOOD_ALARM_M = 0.3
#: Flood volume above which an overflowing node is an alarm, m³.
NODE_ALARM_M3 = 10.0
#: Severity of crowd drill alerts by the alert level crossed, persons/m² (the sensor ladder).
CROWD_SEVERITY = ((6.0, "purple"), (5.0, "red"), (4.0, "orange"), (2.0, "yellow"))


def graded_alert(
    site: str, code: str, kind: str, value: float, alarm_above: float, message: str
) -> DrillAlert:
    """A drill alert that is a warning (level 1), or an alarm (level 2) above ``alarm_above``.

    Parameters
    ----------
    site, code : the CIM object
    kind : what happened (``road-closure``...)
    value : the measure graded (a depth, a volume)
    alarm_above : the value above which it is an alarm
    message : for the operator
    """
    alarm = value > alarm_above
    return DrillAlert(
        site, code, kind, "alarm" if alarm else "warning", message, value, 2 if alarm else 1
    )


def flood_alerts(
    site: str, closures: Iterable[dict[str, Any]], buildings: Iterable[dict[str, Any]]
) -> list[DrillAlert]:
    """Drill alerts of a site flood: one per closed road and affected building, an alarm
    above :data:`FLOOD_ALARM_M`.

    Parameters
    ----------
    closures : ``{"code", "t_start_s", "max_depth_m"}`` per closure
    buildings : ``{"code", "first_t_s", "max_depth_m"}`` per affected building
    """
    out = []
    for closure in closures:
        depth = float(closure["max_depth_m"])
        message = (
            f"road {closure['code']} closed by water from t={closure['t_start_s']:g} s "
            f"(max depth {depth:.2f} m)"
        )
        out.append(
            graded_alert(site, closure["code"], "road-closure", depth, FLOOD_ALARM_M, message)
        )
    for building in buildings:
        depth = float(building["max_depth_m"])
        message = (
            f"water against building {building['code']} from t={building['first_t_s']:g} s "
            f"(max depth {depth:.2f} m)"
        )
        out.append(
            graded_alert(site, building["code"], "building-flooded", depth, FLOOD_ALARM_M, message)
        )
    return out


def node_alerts(site: str, nodes: dict[str, dict[str, Any]]) -> list[DrillAlert]:
    """Drill alerts of a drainage drill on a site: one per overflowing node (by code), an
    alarm above :data:`NODE_ALARM_M3`.

    Parameters
    ----------
    nodes : code -> ``{"swmm", "max_depth_m", "flood_volume_m3"}``
    """
    return [
        graded_alert(
            site,
            code,
            "node-flooding",
            float(info["flood_volume_m3"]),
            NODE_ALARM_M3,
            f"node {info['swmm']} overflows: {info['flood_volume_m3']:.1f} m3 onto the street",
        )
        for code, info in sorted(nodes.items())
        if info["flood_volume_m3"] > 0
    ]


def crowd_alerts(
    site: str, code: str, venue: str, crossings: Iterable[dict[str, Any]]
) -> list[DrillAlert]:
    """Drill alerts of a crowd drill: one per zone, at the highest density level it crossed
    (first time of that crossing), on the venue's CIM object with the zone in the message.

    Parameters
    ----------
    site, code : the CIM object the venue stands for
    venue : the venue's name
    crossings : ``{"zone", "t", "density", "level"}`` per threshold crossing
    """
    worst: dict[str, dict[str, Any]] = {}
    for crossing in crossings:
        seen = worst.get(crossing["zone"])
        if seen is None or crossing["level"] > seen["level"]:
            worst[crossing["zone"]] = crossing
    out = []
    for zone, crossing in sorted(worst.items()):
        level = float(crossing["level"])
        rank = sum(1 for threshold, _ in CROWD_SEVERITY if level >= threshold)
        severity = next((s for t, s in CROWD_SEVERITY if level >= t), "yellow")
        out.append(
            DrillAlert(
                site,
                code,
                "crowd-density",
                severity,
                f"venue {venue} zone {zone}: density {crossing['density']:g} p/m2 passed "
                f"{level:g} p/m2 at t={crossing['t']:g} s",
                float(crossing["density"]),
                max(rank, 1),
            )
        )
    return out
