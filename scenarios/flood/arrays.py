"""Freeze a :class:`~scenarios.flood.network.Network` into the arrays the kernels step.

Nodes, conduits, pumps, orifices, weirs and subcatchments become index arrays and parameter
columns; names stay in lists so results map back to the file's ids.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from scenarios.flood.network import Network, TimeSeries
from scenarios.flood.xsect import XsectTables, build_tables

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

JUNCTION, OUTFALL, STORAGE = 0, 1, 2
PUMP_TYPES = {"PUMP1": 1, "PUMP2": 2, "PUMP3": 3, "PUMP4": 4, "PUMP5": 3}


@dataclass
class NetworkArrays:
    """Column view of a network (SI units). ``n`` nodes, ``m`` conduits, ``p`` pumps.

    Node storage area (m2) at depth d is ``store_a·d^store_b + store_c``, or a tabular curve
    for the nodes in ``store_tabular``.
    """

    node_names: list[str]
    node_kind: IntArray
    invert: FloatArray
    full_depth: FloatArray
    flood_depth: FloatArray
    crown_depth: FloatArray
    init_depth: FloatArray
    ponded_area: FloatArray
    store_a: FloatArray
    store_b: FloatArray
    store_c: FloatArray
    store_tabular: dict[int, tuple[FloatArray, FloatArray]]
    outfall_stage: FloatArray
    outfall_fixed: BoolArray
    outfall_gated: BoolArray
    outfall_conduit: IntArray
    """(n,) index of a conduit draining into each outfall (-1 for none or non-outfalls)"""

    conduit_names: list[str]
    c_from: IntArray
    c_to: IntArray
    length: FloatArray
    roughness: FloatArray
    z_in: FloatArray
    z_out: FloatArray
    beta: FloatArray
    barrels: FloatArray
    max_flow: FloatArray
    loss_in: FloatArray
    loss_out: FloatArray
    loss_avg: FloatArray
    flap: BoolArray
    init_flow: FloatArray
    xs: XsectTables

    pump_names: list[str]
    p_from: IntArray
    p_to: IntArray
    p_type: IntArray
    p_curve: list[tuple[FloatArray, FloatArray]]
    p_init_on: BoolArray
    p_startup: FloatArray
    p_shutoff: FloatArray

    reg_names: list[str]
    """orifices then weirs"""
    r_from: IntArray
    r_to: IntArray
    r_is_weir: BoolArray
    r_crest: FloatArray
    r_coeff: FloatArray
    r_height: FloatArray
    r_width: FloatArray
    r_gated: BoolArray
    r_circular: BoolArray

    sub_names: list[str]
    s_outlet: IntArray
    s_gage: IntArray
    s_area: FloatArray
    """(s, 3) float, m2 — areas of impervious-without-storage, impervious, pervious subareas"""
    s_alpha: FloatArray
    """(s, 3) nonlinear-reservoir coefficient (m^-2/3 s^-1); 0 means runoff = excess at once"""
    s_dstore: FloatArray
    s_routed: BoolArray
    """(s, 3) True where the subarea's N > 0 (nonlinear reservoir); False: direct runoff"""
    s_horton: FloatArray
    """(s, 5) Horton f0 (m/s), fmin (m/s), decay (1/s), dry time (s), max volume (m; 0 none)"""

    gage_names: list[str]
    gage_series: list[TimeSeries]
    gage_interval: FloatArray
    inflow_node: IntArray
    inflow_series: list[TimeSeries | None]
    inflow_scale: FloatArray
    inflow_base: FloatArray

    @property
    def n_nodes(self) -> int:
        """Number of nodes."""
        return len(self.node_names)


def _f(values: list[float]) -> FloatArray:
    return np.asarray(values, dtype=np.float64).reshape(-1)


def freeze(net: Network) -> NetworkArrays:
    """The arrays of ``net``.

    Raises
    ------
    ValueError
        If a pump curve type is not a SWMM pump curve.
    """
    names = list(net.nodes)
    index = {name: i for i, name in enumerate(names)}
    nodes = list(net.nodes.values())
    conduits = [lk for lk in net.links.values() if lk.kind == "conduit"]
    pumps = [lk for lk in net.links.values() if lk.kind == "pump"]
    regs = [lk for lk in net.links.values() if lk.kind == "orifice"]
    regs += [lk for lk in net.links.values() if lk.kind == "weir"]
    kind = np.array(
        [{"junction": JUNCTION, "outfall": OUTFALL, "storage": STORAGE}[n.kind] for n in nodes],
        dtype=np.int64,
    )
    xs = build_tables(
        [c.xsect.shape for c in conduits if c.xsect is not None],
        [c.xsect.geom for c in conduits if c.xsect is not None],
        [c.xsect.transect for c in conduits if c.xsect is not None],
    )
    c_from = np.array([index[c.from_node] for c in conduits], dtype=np.int64)
    c_to = np.array([index[c.to_node] for c in conduits], dtype=np.int64)
    z_in = _f([c.in_offset_m for c in conduits])
    z_out = _f([c.out_offset_m for c in conduits])
    invert = _f([n.invert_m for n in nodes])
    length = _f([c.length_m for c in conduits])
    roughness = _f([c.roughness for c in conduits])
    slope = (invert[c_from] + z_in - invert[c_to] - z_out) / length
    crown = np.zeros(len(nodes))
    np.maximum.at(crown, c_from, z_in + xs.y_full)
    np.maximum.at(crown, c_to, z_out + xs.y_full)
    full = _f([n.max_depth_m for n in nodes])
    full = np.where((full <= 0) & (kind != OUTFALL), crown, full)
    store_a, store_b, store_c = np.zeros(len(nodes)), np.zeros(len(nodes)), np.zeros(len(nodes))
    tabular: dict[int, tuple[FloatArray, FloatArray]] = {}
    for i, node in enumerate(nodes):
        curve = node.storage_curve
        if curve is None:
            continue
        if curve[0] == "functional":
            store_a[i], store_b[i], store_c[i] = float(curve[1]), float(curve[2]), float(curve[3])
        else:
            tabular[i] = (
                np.asarray(curve[1], dtype=np.float64),
                np.asarray(curve[2], dtype=np.float64),
            )
    outfall_conduit = np.full(len(nodes), -1, dtype=np.int64)
    outfall_conduit[c_to[::-1]] = np.arange(len(conduits))[::-1]
    outfall_conduit[kind != OUTFALL] = -1
    p_curve: list[tuple[FloatArray, FloatArray]] = []
    p_type: list[int] = []
    for p in pumps:
        if p.curve is None:
            p_type.append(0)
            p_curve.append((np.zeros(1), np.zeros(1)))
            continue
        curve_obj = net.curves[p.curve]
        if curve_obj.kind not in PUMP_TYPES:
            raise ValueError(
                f"pump {p.name}: curve {p.curve} is {curve_obj.kind}, not a pump curve"
            )
        p_type.append(PUMP_TYPES[curve_obj.kind])
        p_curve.append((curve_obj.x, curve_obj.y))
    subs = list(net.subcatchments.values())
    gage_names = list(net.gages)
    gindex = {g: i for i, g in enumerate(gage_names)}
    s_area = np.zeros((len(subs), 3))
    s_alpha = np.zeros((len(subs), 3))
    s_dstore = np.zeros((len(subs), 3))
    s_routed = np.zeros((len(subs), 3), dtype=bool)
    s_horton = np.zeros((len(subs), 5))
    s_outlet = np.zeros(len(subs), dtype=np.int64)
    for k, sub in enumerate(subs):
        outlet = sub.outlet
        seen = {sub.name}
        while outlet in net.subcatchments and outlet not in seen:  # runoff onto a subcatchment
            seen.add(outlet)
            outlet = net.subcatchments[outlet].outlet
        s_outlet[k] = index[outlet]
        f_imp = sub.pct_imperv / 100.0
        a_imp, a_perv = f_imp * sub.area_m2, (1.0 - f_imp) * sub.area_m2
        zero = sub.pct_zero / 100.0
        s_area[k] = (a_imp * zero, a_imp * (1.0 - zero), a_perv)
        s_dstore[k] = (0.0, sub.dstore_imperv_m, sub.dstore_perv_m)
        for col, (area, n) in enumerate(
            ((a_imp, sub.n_imperv), (a_imp, sub.n_imperv), (a_perv, sub.n_perv))
        ):
            if area > 0 and n > 0:
                s_alpha[k, col] = sub.width_m / area * np.sqrt(max(sub.slope, 0.0)) / n
                s_routed[k, col] = True
        if sub.horton is not None:
            s_horton[k] = sub.horton
    return NetworkArrays(
        node_names=names,
        node_kind=kind,
        invert=invert,
        full_depth=full,
        flood_depth=full + _f([n.surcharge_depth_m for n in nodes]),
        crown_depth=crown,
        init_depth=_f([n.init_depth_m for n in nodes]),
        ponded_area=_f([n.ponded_area_m2 if net.options.allow_ponding else 0.0 for n in nodes]),
        store_a=store_a,
        store_b=store_b,
        store_c=store_c,
        store_tabular=tabular,
        outfall_stage=_f([n.stage_m - n.invert_m if n.stage_m is not None else 0.0 for n in nodes]),
        outfall_fixed=np.array([n.outfall_type == "FIXED" for n in nodes], dtype=bool),
        outfall_gated=np.array([n.kind == "outfall" and n.gated for n in nodes], dtype=bool),
        outfall_conduit=outfall_conduit,
        conduit_names=[c.name for c in conduits],
        c_from=c_from,
        c_to=c_to,
        length=length,
        roughness=roughness,
        z_in=z_in,
        z_out=z_out,
        beta=np.sqrt(np.maximum(slope, 0.0)) / roughness,
        barrels=_f([c.xsect.barrels if c.xsect is not None else 1 for c in conduits]),
        max_flow=_f([c.max_flow_m3s for c in conduits]),
        loss_in=_f([c.k_entry for c in conduits]),
        loss_out=_f([c.k_exit for c in conduits]),
        loss_avg=_f([c.k_avg for c in conduits]),
        flap=np.array([c.flap_gate for c in conduits], dtype=bool),
        init_flow=_f([c.init_flow_m3s for c in conduits]),
        xs=xs,
        pump_names=[p.name for p in pumps],
        p_from=np.array([index[p.from_node] for p in pumps], dtype=np.int64),
        p_to=np.array([index[p.to_node] for p in pumps], dtype=np.int64),
        p_type=np.array(p_type, dtype=np.int64),
        p_curve=p_curve,
        p_init_on=np.array([p.initially_on for p in pumps], dtype=bool),
        p_startup=_f([p.startup_depth_m for p in pumps]),
        p_shutoff=_f([p.shutoff_depth_m for p in pumps]),
        reg_names=[r.name for r in regs],
        r_from=np.array([index[r.from_node] for r in regs], dtype=np.int64),
        r_to=np.array([index[r.to_node] for r in regs], dtype=np.int64),
        r_is_weir=np.array([r.kind == "weir" for r in regs], dtype=bool),
        r_crest=_f([r.crest_m for r in regs]),
        r_coeff=_f([r.coeff for r in regs]),
        # a weir's height only matters once it surcharges: 0 for one that may not
        r_height=_f(
            [
                r.xsect.geom[0] if r.xsect and (r.kind != "weir" or r.surcharge) else 0.0
                for r in regs
            ]
        ),
        r_width=_f([(r.xsect.geom[1] or r.xsect.geom[0]) if r.xsect else 0.0 for r in regs]),
        r_gated=np.array([r.gated for r in regs], dtype=bool),
        r_circular=np.array(
            [bool(r.xsect and r.xsect.shape == "CIRCULAR") for r in regs], dtype=bool
        ),
        sub_names=[s.name for s in subs],
        s_outlet=s_outlet,
        s_gage=np.array([gindex[s.gage] for s in subs], dtype=np.int64),
        s_area=s_area,
        s_alpha=s_alpha,
        s_dstore=s_dstore,
        s_routed=s_routed,
        s_horton=s_horton,
        gage_names=gage_names,
        gage_series=[net.gages[g].series for g in gage_names],
        gage_interval=_f([net.gages[g].interval_s for g in gage_names]),
        inflow_node=np.array([index[i.node] for i in net.inflows], dtype=np.int64),
        inflow_series=[i.series for i in net.inflows],
        inflow_scale=_f([i.scale for i in net.inflows]),
        inflow_base=_f([i.baseline_m3s for i in net.inflows]),
    )
