"""The 1D drainage drill as a SimPy model: actors schedule, the numpy kernels compute.

Processes
---------
``runoff``
    every wet step, turns the gauges' rain into subcatchment runoff for the next step (SWMM's
    convention: routing interpolates runoff between the two runoff times).
``pump_failure``
    one per failure: at its time the pump's enable mask drops to False.
``routing``
    the integrator: picks the variable step (Courant bound), calls
    :func:`scenarios.flood.kernel.route_step`, accumulates statistics in bulk.
``recorder``
    samples node depths into preallocated arrays every report step.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt
import simpy

from cim.errors import TwinError
from scenarios.flood.arrays import OUTFALL, NetworkArrays, freeze
from scenarios.flood.controls import Premise, pack_rules, parse_rules
from scenarios.flood.jit import specialise
from scenarios.flood.kernel import (
    RoutingState,
    link_volume,
    node_volume,
    prime,
)
from scenarios.flood.network import Inflow, Network
from scenarios.flood.network_kernel import (
    C_INFLOW,
    C_K,
    C_REC_ON,
    C_REPORT_STEP,
    C_REPORT_T,
    C_RULE_STEP,
    C_RULE_T,
    C_RULES_ON,
    C_START_SOD,
    C_WAIT,
    C_WAIT_B,
    N_CLOCK,
    N_TALLY,
    NEW_HOUR,
    QUIET,
    T_CALL,
    T_HOUR,
    T_LOG,
    T_STATUS,
    T_STEPS,
    T_TRIALS,
    UNSTABLE,
    advance,
    pack,
    skip_reports,
)
from scenarios.flood.runoff import (
    FLOWS,
    PONDED,
    RAINED,
    GageTable,
    next_rain_change,
    runoff_step,
)
from scenarios.flood.spec import FloodResult, FloodSpec

FloatArray = npt.NDArray[np.float64]
Progress = Callable[[float, str], None]
MIN_ROUTE_STEP_S = 0.5
QUIET_FLOW_M3S = 1e-7
LOG_ROWS = 1024


class UnknownObjectError(TwinError):
    """A spec names a pump, node or link the network does not have."""


@dataclass
class _Runoff:
    """Runoff state and the two runoff times routing interpolates between."""

    depth: FloatArray
    infiltrated: FloatArray
    t_old: float = 0.0
    t_new: float = 0.0
    old: FloatArray | None = None
    new: FloatArray | None = None
    rain_m3: float = 0.0
    infil_m3: float = 0.0
    runoff_m3: float = 0.0

    def at(self, t: float, n_subs: int) -> FloatArray:
        if self.old is None or self.new is None:
            return np.zeros(n_subs)
        span = self.t_new - self.t_old
        f = 1.0 if span <= 0 else min(max((t - self.t_old) / span, 0.0), 1.0)
        out: FloatArray = self.old + (self.new - self.old) * f
        return out


class DrainageModel:
    """One run of one network; build it, then :meth:`run`."""

    def __init__(self, net: Network, spec: FloodSpec, progress: Progress | None = None) -> None:
        self.net = net
        self.spec = spec
        self.progress = progress
        self.arr: NetworkArrays = freeze(net)
        arr = self.arr
        self.jit = pack(arr)
        self.gages = GageTable(arr.gage_series, arr.gage_interval)
        self.duration = spec.duration_s if spec.duration_s is not None else net.options.duration_s
        self.report_step = spec.report_step_s or net.options.report_step_s
        self.state = RoutingState.initial(arr)
        self.pump_enabled = np.ones(len(arr.pump_names), dtype=bool)
        self.reg_setting = np.ones(len(arr.reg_names))
        self.conduit_closed = np.zeros(len(arr.conduit_names), dtype=bool)
        pumps = {name: k for k, name in enumerate(arr.pump_names)}
        self.failures = []
        for failure in spec.pump_failures:
            if failure.name not in pumps:
                raise UnknownObjectError(
                    f"{net.path}: no pump {failure.name!r} (pumps: {', '.join(pumps) or 'none'})"
                )
            self.failures.append((pumps[failure.name], failure.t_s))
        n, m = arr.n_nodes, len(arr.conduit_names)
        s = len(arr.sub_names)
        self.runoff = _Runoff(depth=np.zeros((s, 3)), infiltrated=np.zeros(s))
        self.max_depth = arr.init_depth.copy()
        self.surcharge_s = np.zeros(n)
        self.flood_m3 = np.zeros(n)
        self.outfall_m3 = np.zeros(n)
        self.outfall_peak = np.zeros(n)
        self.link_peak = np.zeros(m)
        self.inflow_m3 = 0.0
        self.steps = 0
        self.trials = 0
        """Picard trials over all steps (at most 8 a step)"""
        n_reports = int(np.floor(self.duration / self.report_step)) + 1
        self.report_times = np.arange(n_reports) * self.report_step
        self.depth_series = np.zeros((n_reports, n))
        self.events: list[dict[str, Any]] = []
        self.extra_lateral = np.zeros(n)
        """(n,) m3/s added to each node by a coupled model (surface water draining back)"""
        self.spilled = np.zeros(n)
        """(n,) m3 flooded since a coupled model last took it"""
        self.storage0 = 0.0
        self.rules = parse_rules(net)
        self.start = (
            datetime.fromisoformat(net.options.start) if net.options.start else datetime(2000, 1, 1)
        )
        self._pattern_hour = -1
        self._inflow_base = arr.inflow_base.copy()
        self.links = {name: ("conduit", k) for k, name in enumerate(arr.conduit_names)}
        self.links.update({name: ("pump", k) for k, name in enumerate(arr.pump_names)})
        self.links.update({name: ("reg", k) for k, name in enumerate(arr.reg_names)})
        self.nodes = {name: k for k, name in enumerate(arr.node_names)}
        for setting in spec.settings:
            if setting.name not in self.links:
                raise UnknownObjectError(f"{net.path}: no link {setting.name!r} to set")
        # Rules and report samples run inside the compiled routing (ADR 0015, section 8)
        # unless another actor changes controls too (their order at equal times is SimPy's)
        # or a routing step may span a report step.
        self.jit_rules = pack_rules(self.rules, self.nodes, self.links)
        self.compiled_rules = bool(self.rules) and not spec.settings and not self.failures
        self.compiled_reports = net.options.routing_step_s <= self.report_step
        self.clock = np.zeros(N_CLOCK)
        self.rule_log = np.zeros((LOG_ROWS, 4))
        self._has_inflows = len(arr.inflow_node) > 0
        self._runoff_wet = False
        """whether runoff may reach the network (set by the runoff actor each step)"""

    # --- actors -----------------------------------------------------------------------
    def runoff_process(self, env: simpy.Environment) -> Generator[simpy.Event, Any, None]:
        arr, ro, gages = self.arr, self.runoff, self.gages
        step = self.net.options.wet_step_s
        s = len(arr.sub_names)
        ro.old = np.zeros(s)
        ro.new = np.zeros(s)
        area_sum = arr.s_area.sum(axis=1)
        pervious = np.ascontiguousarray(arr.s_area[:, 2])
        rain, infil = np.zeros(s), np.zeros(s)
        args = (
            gages.start, gages.t_s, gages.values, gages.interval_s,
            np.ascontiguousarray(arr.s_gage, dtype=np.int64),
            np.ascontiguousarray(arr.s_horton, dtype=np.float64),
            np.ascontiguousarray(arr.s_alpha, dtype=np.float64),
            np.ascontiguousarray(arr.s_dstore, dtype=np.float64),
            np.ascontiguousarray(arr.s_routed, dtype=np.bool_),
            np.ascontiguousarray(arr.s_area, dtype=np.float64),
            0.0, 1.0, ro.depth, ro.infiltrated, rain, infil, ro.new,
        )  # fmt: skip
        call = specialise(runoff_step, args)
        static = args[:10]
        flows_before = False
        while env.now < self.duration:
            t = float(env.now)
            dt = min(step, self.duration - t)
            flow = np.empty(s)
            flags = int(call(*static, t, dt, ro.depth, ro.infiltrated, rain, infil, flow))
            if flags & RAINED:  # else both sums are 0.0
                ro.rain_m3 += float((rain * area_sum).sum() * dt)
                ro.infil_m3 += float((infil * pervious).sum() * dt)
            # runoff is wet while the old or new outflow is positive or a subarea is ponded
            self._runoff_wet = bool(flags & (FLOWS | PONDED)) or flows_before
            flows_before = bool(flags & FLOWS)
            ro.old, ro.new = ro.new, flow
            ro.t_old, ro.t_new = t, t + dt
            yield env.timeout(dt)

    def operator_schedule(self, env: simpy.Environment) -> Generator[simpy.Event, Any, None]:
        """The operator actor: applies the spec's scheduled settings in time order."""
        for setting in sorted(self.spec.settings, key=lambda s: s.t_s):
            if setting.t_s > float(env.now):
                yield env.timeout(setting.t_s - float(env.now))
            kind, k = self.links[setting.name]
            if kind == "pump":
                self.state.pump_on[k] = setting.value > 0 and bool(self.pump_enabled[k])
            elif kind == "reg":
                self.reg_setting[k] = min(setting.value, 1.0)
            else:
                self.conduit_closed[k] = setting.value <= 0
            self.events.append(
                {
                    "t_s": float(env.now),
                    "kind": "setting",
                    "link": setting.name,
                    "value": setting.value,
                }
            )

    def pump_failure(
        self, env: simpy.Environment, pump: int, t_s: float
    ) -> Generator[simpy.Event, Any, None]:
        yield env.timeout(t_s)
        self.pump_enabled[pump] = False
        self.events.append(
            {"t_s": float(env.now), "kind": "pump_failure", "pump": self.arr.pump_names[pump]}
        )

    def control_rules(self, env: simpy.Environment) -> Generator[simpy.Event, Any, None]:
        """Evaluate the file's control rules every rule step and set pumps, gates, weirs."""
        step = self.net.options.routing_step_s
        while True:
            self._apply_rules(float(env.now))
            yield env.timeout(step)

    def _apply_rules(self, now: float) -> None:
        """One pass of the rules at ``now`` (s): premises, then THEN or ELSE actions."""
        for rule in self.rules:
            actions = rule.then if rule.holds(lambda p: self._read(p, now)) else rule.otherwise
            for action in actions:
                kind, k = self.links[action.name]
                if kind == "pump":
                    on = action.value > 0
                    if on != bool(self.state.pump_on[k]) and self.pump_enabled[k]:
                        self.state.pump_on[k] = on
                        self.events.append(
                            {
                                "t_s": now,
                                "kind": "pump_on" if on else "pump_off",
                                "pump": action.name,
                                "rule": rule.name,
                            }
                        )
                elif kind == "reg":
                    self.reg_setting[k] = min(max(action.value, 0.0), 1.0)
                else:
                    self.conduit_closed[k] = action.value <= 0

    def _read(self, premise: Premise, t: float) -> float:
        st, arr = self.state, self.arr
        if premise.kind == "SIMULATION":
            if premise.attribute == "TIME":
                return t
            when = self.start + timedelta(seconds=t)
            return when.hour * 3600.0 + when.minute * 60.0 + when.second
        if premise.kind == "NODE":
            i = self.nodes[premise.name]
            if premise.attribute == "DEPTH":
                return float(st.depth[i])
            if premise.attribute == "HEAD":
                return float(st.depth[i] + arr.invert[i])
            return float(st.net_inflow[i])
        kind, k = self.links[premise.name]
        if premise.attribute == "STATUS":
            return float(st.pump_on[k]) if kind == "pump" else float(not self.conduit_closed[k])
        if kind == "pump":
            return float(st.pump_q[k])
        if kind == "reg":
            return float(st.reg_q[k])
        return float(st.q[k] * arr.barrels[k])

    def _pattern_factor(self, inflow: Inflow, when: datetime) -> float:
        factor = 1.0
        weekend = when.weekday() >= 5
        has_weekend = any(p.kind == "WEEKEND" for p in inflow.patterns)
        for pattern in inflow.patterns:
            if pattern.kind == "MONTHLY":
                factor *= pattern.factors[when.month - 1]
            elif pattern.kind == "DAILY":
                factor *= pattern.factors[(when.weekday() + 1) % 7]
            elif (pattern.kind == "HOURLY" and not (weekend and has_weekend)) or (
                pattern.kind == "WEEKEND" and weekend
            ):
                factor *= pattern.factors[when.hour]
        return factor

    def recorder(self, env: simpy.Environment) -> Generator[simpy.Event, Any, None]:
        for k in range(len(self.report_times)):
            self.depth_series[k] = self.state.depth
            if self.progress is not None:
                self.progress(min(float(env.now) / self.duration, 1.0), "routing")
            if k + 1 < len(self.report_times):
                yield env.timeout(self.report_step)

    def lateral(self, t: float) -> FloatArray:
        arr = self.arr
        n = arr.n_nodes
        runoff = np.bincount(arr.s_outlet, self.runoff.at(t, len(arr.sub_names)), n)
        lateral: FloatArray = runoff.astype(np.float64) + self.extra_lateral
        if len(arr.inflow_node):
            hour = int(t // 3600)
            if hour != self._pattern_hour:
                when = self.start + timedelta(hours=hour)
                factors = [self._pattern_factor(i, when) for i in self.net.inflows]
                self._inflow_base = arr.inflow_base * np.asarray(factors)
                self._pattern_hour = hour
            ext = self._inflow_base.copy()
            for k, series in enumerate(arr.inflow_series):
                if series is not None:
                    ext[k] += arr.inflow_scale[k] * float(np.interp(t, series.t_s, series.values))
            lateral = lateral + np.bincount(arr.inflow_node, ext, n)
        out: FloatArray = lateral.astype(np.float64)
        return out

    def quiet_until(self, t: float) -> float:
        """End of a dry spell starting at ``t`` (s), or ``t`` when water is moving."""
        arr, st, ro = self.arr, self.state, self.runoff
        if len(arr.inflow_node) or (len(st.pump_q) and st.pump_q.max() > 0):
            return t
        if self.extra_lateral.any():
            return t
        if st.q.size and np.abs(st.q).max() > QUIET_FLOW_M3S:
            return t
        if ro.new is not None and (
            ro.new.max(initial=0.0) > 0 or (ro.old is not None and ro.old.max(initial=0.0) > 0)
        ):
            return t
        if (ro.depth > arr.s_dstore + 1e-9).any():
            return t
        if self.gages.rates(t).max(initial=0.0) > 0:
            return t
        step = self.net.options.wet_step_s
        end = min(next_rain_change(arr.gage_series, arr.gage_interval, t), self.duration)
        # land on a runoff time so the runoff process sees the rain first
        return max(t, min(end, np.floor(end / step) * step) if end > t + step else t)

    def _may_quiet(self, t: float) -> bool:
        """Whether the network may be quiet at ``t`` once no conduit or pump moves water."""
        arr, ro = self.arr, self.runoff
        if len(arr.inflow_node) or self.extra_lateral.any():
            return False
        if ro.new is not None and (
            ro.new.max(initial=0.0) > 0 or (ro.old is not None and ro.old.max(initial=0.0) > 0)
        ):
            return False
        if (ro.depth > arr.s_dstore + 1e-9).any():
            return False
        return not self.gages.rates(t).max(initial=0.0) > 0

    def _set_hour(self, hour: int) -> None:
        """External inflows' baselines with their patterns for the hour starting at ``hour``."""
        when = self.start + timedelta(hours=hour)
        factors = [self._pattern_factor(i, when) for i in self.net.inflows]
        self._inflow_base = self.arr.inflow_base * np.asarray(factors)
        self._pattern_hour = hour

    def _may_quiet_static(self) -> bool:
        """:meth:`_may_quiet` without the rain check (the kernel checks rain itself)."""
        if self._has_inflows or self._runoff_wet:
            return False
        return not self.extra_lateral.any()

    def _flush_log(self, tally: FloatArray) -> None:
        """Pump switches the compiled rules logged, as the rule actor's events."""
        if not tally[T_LOG]:
            return
        for row in self.rule_log[: int(tally[T_LOG])]:
            k = int(row[2])
            self.events.append(
                {
                    "t_s": float(row[0]),
                    "kind": "pump_on" if row[3] > 0 else "pump_off",
                    "pump": self.arr.pump_names[k],
                    "rule": self.rules[int(row[1])].name,
                }
            )
        tally[T_LOG] = 0.0

    def routing(self, env: simpy.Environment) -> Generator[simpy.Event, Any, None]:
        """The integrator: compiled chunks of variable steps up to the next event of any actor.

        SimPy holds the coarse events (runoff steps, failures, settings, coupling);
        :func:`scenarios.flood.network_kernel.advance` takes every routing step in between with
        the lateral inflow, the control rules, the report samples and the run's statistics
        inside, and hands back for a dry spell (skipped here as before) or a new pattern hour.
        """
        st, opts = self.state, self.net.options
        jit, clock, gages = self.jit, self.clock, self.gages
        s = len(self.arr.sub_names)
        tally = np.zeros(N_TALLY)
        no_quiet_until = -1.0
        no_runoff = np.zeros(s)
        call: Callable[..., Any] | None = None
        t = float(env.now)
        while t < self.duration - 1e-9:
            t_stop = min(float(env.peek()), self.duration)
            ro = self.runoff
            tally[:] = 0.0
            args = (
                jit, st.depth, st.q, st.a_mid, st.pump_q, st.pump_on, st.reg_q,
                st.net_inflow, st.overflow, st.ponded, st.old_surf, st.dydt, st.froude,
                t, t_stop, self.duration, float(opts.routing_step_s), float(opts.variable_step),
                MIN_ROUTE_STEP_S, float(opts.min_surfarea_m2), self.pump_enabled,
                self.reg_setting, self.conduit_closed,
                ro.old if ro.old is not None else no_runoff,
                ro.new if ro.new is not None else no_runoff,
                float(ro.t_old), float(ro.t_new), self.extra_lateral, self._inflow_base,
                int(self._pattern_hour), self._may_quiet_static(), no_quiet_until,
                QUIET_FLOW_M3S, gages.start, gages.t_s, gages.values, gages.interval_s,
                self.flood_m3, self.spilled, self.outfall_m3, self.outfall_peak,
                self.link_peak, self.max_depth, self.surcharge_s, self.jit_rules, clock,
                self.depth_series, self.rule_log, tally,
            )  # fmt: skip
            if call is None:
                call = specialise(advance, args)
            t_next = float(call(*args))
            self.steps += int(tally[T_STEPS])
            self.trials += int(tally[T_TRIALS])
            self.inflow_m3 = float(clock[C_INFLOW])
            self._flush_log(tally)
            status = int(tally[T_STATUS])
            call_t = float(tally[T_CALL])
            # where SimPy's clock stood after the old per-event routing activation
            moved = call_t + (t_next - call_t) if t_next > call_t else call_t
            if status == UNSTABLE:
                raise TwinError(
                    f"{self.net.path}: routing unstable at t={t_next:.0f} s: "
                    "routing step produced non-finite depths"
                )
            if status == NEW_HOUR:
                self._set_hour(int(tally[T_HOUR]))
                t_next = moved
            elif status == QUIET:
                quiet = self.quiet_until(t_next)
                if quiet > t_next:
                    # nothing flows and nothing arrives before ``quiet``: skip the dry spell
                    t_next = call_t + (quiet - call_t)
                    if self.compiled_reports:
                        skip_reports(self.depth_series, st.depth, clock, call_t, t_next)
                else:
                    no_quiet_until = t_next
                    t_next = moved
            if self.progress is not None:
                self.progress(min(t_next / self.duration, 1.0), "routing")
            if t_next > float(env.now):
                yield env.timeout(t_next - float(env.now))
            t = t_next
        # what the rule and report actors still did up to the end of the run
        if self.compiled_rules:
            # the rule times left after the last step (usually one, at the end): the same
            # pass in Python, which spares loading another compiled kernel for it
            while clock[C_RULE_T] < self.duration + 1e-6:
                self._apply_rules(float(clock[C_RULE_T]))
                clock[C_RULE_T] += clock[C_RULE_STEP]
        if self.compiled_reports:
            k = int(clock[C_K])
            self.depth_series[k:] = st.depth

    def run(self) -> FloodResult:
        """Run to the end and summarise.

        Raises
        ------
        cim.errors.TwinError
            If the routing becomes unstable.
        """
        start = time.perf_counter()
        env = simpy.Environment()
        self.attach(env)
        env.run(until=self.duration + 1e-6)
        return self.summarise(time.perf_counter() - start)

    def attach(self, env: simpy.Environment) -> None:
        """Register the model's processes with ``env`` (for runs coupled with others)."""
        arr = self.arr
        prime(arr, self.state)
        self.storage0 = float(
            node_volume(arr, self.state.depth, self.net.options.min_surfarea_m2).sum()
        )
        self.storage0 += link_volume(arr, self.state)
        clock, now = self.clock, float(env.now)
        clock[C_RULES_ON] = float(self.compiled_rules)
        clock[C_RULE_T], clock[C_RULE_STEP] = now, float(self.net.options.routing_step_s)
        clock[C_START_SOD] = self.start.hour * 3600.0 + self.start.minute * 60.0 + self.start.second
        clock[C_REC_ON] = float(self.compiled_reports)
        clock[C_REPORT_T], clock[C_REPORT_STEP] = now, float(self.report_step)
        # at the start SimPy ran routing before the recorder: one step, then sample 0
        clock[C_WAIT], clock[C_WAIT_B], clock[C_K] = 1.0, 1.0, 0.0
        env.process(self.runoff_process(env))
        for pump, t_s in self.failures:
            env.process(self.pump_failure(env, pump, t_s))
        if self.rules and not self.compiled_rules:
            env.process(self.control_rules(env))
        if self.spec.settings:
            env.process(self.operator_schedule(env))
        env.process(self.routing(env))
        if not self.compiled_reports:
            env.process(self.recorder(env))

    def summarise(self, wall_s: float) -> FloodResult:
        """The result of a finished run."""
        arr = self.arr
        min_area = self.net.options.min_surfarea_m2
        storage0 = self.storage0
        storage1 = float(node_volume(arr, self.state.depth, min_area).sum()) + link_volume(
            arr, self.state
        )
        names = arr.node_names
        outfall = arr.node_kind == OUTFALL
        flooded = [names[i] for i in np.flatnonzero(self.flood_m3 > 1e-6)]
        total_in = self.inflow_m3 + storage0
        out_m3 = float(self.outfall_m3[outfall].sum())
        flood_total = float(self.flood_m3.sum())
        error = 0.0
        if total_in > 0:
            error = (total_in - out_m3 - flood_total - storage1) / total_in * 100.0
        if self.progress is not None:
            self.progress(1.0, "done")
        return FloodResult(
            total_flood_volume_m3=flood_total,
            outfall_peak_flow_m3s={
                names[i]: float(self.outfall_peak[i]) for i in np.flatnonzero(outfall)
            },
            outfall_volume_m3={
                names[i]: float(self.outfall_m3[i]) for i in np.flatnonzero(outfall)
            },
            node_flood_volume_m3={
                names[i]: float(self.flood_m3[i]) for i in np.flatnonzero(self.flood_m3 > 1e-6)
            },
            node_max_depth_m={names[i]: float(self.max_depth[i]) for i in range(len(names))},
            node_surcharge_s={
                names[i]: float(self.surcharge_s[i]) for i in np.flatnonzero(self.surcharge_s > 0)
            },
            link_peak_flow_m3s={
                name: float(q) for name, q in zip(arr.conduit_names, self.link_peak, strict=True)
            },
            flooded_nodes=flooded,
            continuity_error_pct=float(error),
            runoff_volume_m3=float(self.runoff.rain_m3 - self.runoff.infil_m3),
            inflow_volume_m3=float(self.inflow_m3),
            outflow_volume_m3=out_m3,
            steps=self.steps,
            duration_s=float(self.duration),
            wall_s=wall_s,
            ignored_sections=list(self.net.ignored_sections),
            report_times_s=[float(t) for t in self.report_times],
            node_depth_series_m={
                name: self.depth_series[:, i].tolist() for i, name in enumerate(names)
            },
            events=self.events,
        )
