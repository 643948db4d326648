"""The cost model of ``randadv run --dry-run``: units, estimated time on this machine, memory.

A short calibration runs a stratified sample of the pending units (the cheapest, the dearest and
some between, by :meth:`Experiment.unit_cost`; all equal by default) in a fresh child process
with the run's thread count, cheapest first, timing each and measuring its peak resident memory
(Linux: ``/proc/self/clear_refs``). Time is fitted as ``t = a + b * cost`` (least squares in
relative error, a, b >= 0) through the finished units, times a factor per *cost group*: the
units sharing the values of the grid's categorical axes (activation, family, norm, ...), which
``unit_cost`` cannot rank against each other (a tanh line search and a ReLU kink sweep of the same
weights cost differently). Every group gets a calibration unit where the budget allows; a group
with none takes the pooled fit and widens the range by the spread of the measured group factors.
A unit still running when the calibration budget is spent is a censored point (its time is at
least what it ran) that the fit must not undercut. The estimate's range comes from
leave-one-out predictions of the finished units, widened where the dearest pending unit lies
beyond the costliest finished one (extrapolation). Wall time for W workers is the makespan of
the units dealt in run order to the first free worker. :func:`replay_estimate` checks the model
offline against a finished run's recorded unit times (``benchmarks/cost_model_check.py``).
"""

from __future__ import annotations

import math
import multiprocessing
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from randadv.errors import ConfigError
from randadv.experiments.base import Experiment
from randadv.runner.executors import ExpRef, exp_ref, run_one


@dataclass
class Calibrated:
    idx: int
    unit: dict[str, Any]
    cost: float
    seconds: float
    peak_bytes: int | None     # so far, if not finished
    finished: bool


@dataclass
class Estimate:
    units_total: int
    units_pending: int
    calibrated: list[Calibrated] = field(default_factory=list)
    compute_seconds: float | None = None
    factor: float = 1.0                   # the estimate's range: [est / factor, est * factor]
    loo: float = 1.0                      # leave-one-out error of the fit (part of factor)
    extrapolated: float = 1.0             # dearest pending cost / costliest finished cost
    groups_unmeasured: int = 0            # cost groups with no calibrated unit
    memory_bytes: int | None = None       # largest measured peak of one unit
    memory_hint_bytes: int | None = None  # largest Experiment.unit_memory over pending units
    unit_seconds: list[float] = field(default_factory=list)   # predicted, in run order

    def wall_seconds(self, parallel: int) -> float | None:
        """Makespan when the pending units are dealt in run order to ``parallel`` workers."""
        if self.compute_seconds is None:
            return None
        if not self.unit_seconds:
            return self.compute_seconds / max(1, min(parallel, self.units_pending))
        return makespan(self.unit_seconds, parallel)


def makespan(seconds: Sequence[float], workers: int) -> float:
    """Finish time of jobs taken in order by the first free of ``workers`` workers."""
    free = [0.0] * max(1, workers)
    for t in seconds:
        i = min(range(len(free)), key=free.__getitem__)
        free[i] += t
    return max(free)


def fit_unit_time(points: Sequence[tuple[float, float]],
                  censored: Sequence[tuple[float, float]] = ()) -> tuple[float, float]:
    """``(a, b)`` of ``t = a + b * cost`` minimising the relative squared error over finished
    ``(cost, seconds)`` points, with a, b >= 0; raised (b first) so that no censored
    ``(cost, at-least-seconds)`` point is predicted below its time. One point, or equal costs:
    time proportional to cost through their mean."""
    pts = [(c, t) for c, t in points if t > 0]
    costs = {c for c, _ in pts}
    if not pts:
        a, b = 0.0, 0.0
    elif len(costs) < 2:
        c0 = sum(c for c, _ in pts) / len(pts)
        t0 = sum(t for _, t in pts) / len(pts)
        a, b = 0.0, t0 / c0
    else:
        # minimise sum ((a + b c_i) / t_i - 1)^2 over a, b >= 0: a 2x2 normal system, then the
        # boundaries
        def err(a: float, b: float) -> float:
            return sum(((a + b * c) / t - 1) ** 2 for c, t in pts)

        s00 = sum(1 / t ** 2 for _, t in pts)
        s01 = sum(c / t ** 2 for c, t in pts)
        s11 = sum(c * c / t ** 2 for c, t in pts)
        r0 = sum(1 / t for _, t in pts)
        r1 = sum(c / t for c, t in pts)
        det = s00 * s11 - s01 * s01
        cands = [(r0 / s00, 0.0), (0.0, r1 / s11)]
        if det > 0:
            a = (r0 * s11 - r1 * s01) / det
            b = (s00 * r1 - s01 * r0) / det
            if a >= 0 and b >= 0:
                cands.append((a, b))
        a, b = min(cands, key=lambda ab: err(*ab))
    for c, t in censored:
        if a + b * c < t:
            b = max(b, (t - a) / c) if c > 0 else b
            if a + b * c < t:
                a = t - b * c
    return a, b


def loo_factor(points: Sequence[tuple[float, float]]) -> float:
    """The largest ratio (either way) between a finished unit's time and its prediction from
    the other finished units (leave-one-out); 1.5 with fewer than 3 points (no test possible).
    :func:`loo_factor_grouped` with every point in one group."""
    return loo_factor_grouped([(c, t, ()) for c, t in points])


# ------------------------------------------------------------------ memory
def available_memory() -> int | None:
    """Bytes of memory available to new work on this machine (MemAvailable), None if unknown."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def check_memory(exp: Experiment, units: Sequence[dict], params: dict, parallel: int = 1) -> None:
    """Refuse up front when a unit's declared peak memory (times the units running at once)
    exceeds the available memory, naming the estimate."""
    hints = [(m, u) for u in units if (m := exp.unit_memory(u, params)) is not None]
    if not hints:
        return
    need, unit = max(hints, key=lambda h: h[0])
    avail = available_memory()
    if avail is not None and need * parallel > avail:
        times = f" x {parallel} units at once" if parallel > 1 else ""
        raise ConfigError(f"unit {unit} needs about {fmt_bytes(need)}{times}, more than the "
                          f"{fmt_bytes(avail)} available on this machine; reduce the sizes"
                          + (" or --workers" if parallel > 1 else ""))


def _rss(pid: int | str = "self") -> tuple[int, int] | None:
    """(current, peak) resident bytes of a process, Linux only."""
    try:
        cur = peak = None
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    cur = int(line.split()[1]) * 1024
                elif line.startswith("VmHWM:"):
                    peak = int(line.split()[1]) * 1024
        return (cur, peak) if cur is not None and peak is not None else None
    except OSError:
        return None


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


# ------------------------------------------------------------------ calibration
def _child(conn, ref: ExpRef, items: list[tuple[int, dict]], params: dict, seed: int,
           device: str, threads: int) -> None:
    torch.set_num_threads(threads)
    if items:   # warm-up (lazy initialisations) on the cheapest unit, not timed
        conn.send(("warmup", items[0][0], time.time()))
        run_one(ref, *items[0], params, seed, device, threads)
    for idx, unit in items:
        can_peak = _reset_peak()
        before = _rss()
        conn.send(("start", idx, time.time(), before[0] if can_peak and before else None))
        _, _, _, secs = run_one(ref, idx, unit, params, seed, device, threads)
        after = _rss()
        peak = after[1] - before[0] if can_peak and before and after else None
        conn.send(("done", idx, secs, peak))
    conn.close()


def cost_groups(units: Sequence[dict]) -> list[tuple]:
    """The cost group of each unit: its values of the categorical grid axes (keys holding a
    str or bool in some unit and taking more than one value), in key order; ``()`` for all when
    the grid has no such axis."""
    keys: list[str] = []
    for u in units:
        for k, v in u.items():
            if k not in keys and isinstance(v, (str, bool)):
                keys.append(k)
    keys = [k for k in keys if len({repr(u.get(k)) for u in units}) > 1]
    return [tuple(repr(u.get(k)) for k in keys) for u in units]


def pick_units(costs: dict[int, float], n: int,
               groups: dict[int, tuple] | None = None) -> list[int]:
    """Calibration units: the cheapest, the dearest, then (with cost groups) the cheapest of
    every other group, largest groups first, then spread between (by cost, then index)."""
    order = sorted(costs, key=lambda i: (costs[i], i))
    if not order:
        return []
    picks = [order[0], order[-1]]
    if groups and len(set(groups.values())) > 1:
        sizes: dict[tuple, int] = {}
        for i in order:
            sizes[groups[i]] = sizes.get(groups[i], 0) + 1
        seen = {groups[i] for i in picks}
        for g in sorted(sizes, key=lambda g: (-sizes[g], g)):
            if g not in seen and len(picks) < n:
                picks.insert(-1, next(i for i in order if groups[i] == g))
                seen.add(g)
    for j in range(1, max(0, n - 2) + 1):
        if len(dict.fromkeys(picks)) >= n:
            break
        picks.insert(-1, order[j * (len(order) - 1) // (n - 1)])
    return list(dict.fromkeys(picks))[:n]


def calibrate(exp: Experiment, pending: Sequence[tuple[int, dict]], params: dict, seed: int,
              device: str, threads: int = 1, n_units: int = 2,
              budget_s: float = 60.0) -> list[Calibrated]:
    """Run up to ``n_units`` representative pending units in a fresh process within
    ``budget_s`` seconds (process start-up excluded); their records are dropped."""
    by_idx = dict(pending)
    costs = {i: float(exp.unit_cost(u, params)) for i, u in pending}
    bad = [i for i, c in costs.items() if not c > 0]
    if bad:
        raise ConfigError(f"{exp.name}.unit_cost must be > 0, got {costs[bad[0]]} for unit "
                          f"{by_idx[bad[0]]}")
    # cheapest first: it also warms the child up
    group_of = dict(zip((i for i, _ in pending), cost_groups([u for _, u in pending]),
                        strict=True))
    picks = sorted(pick_units(costs, n_units, group_of), key=lambda i: (costs[i], i))
    ctx = multiprocessing.get_context("spawn")
    recv, send = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, daemon=True, args=(
        send, exp_ref(exp), [(i, by_idx[i]) for i in picks], params, seed, device, threads))
    proc.start()
    send.close()
    out: list[Calibrated] = []
    started: dict[int, float] = {}
    base: dict[int, int | None] = {}
    deadline: float | None = None
    try:
        while len(out) < len(picks):
            timeout = None if deadline is None else max(0.0, deadline - time.time())
            if not recv.poll(timeout):
                break
            try:
                msg = recv.recv()
            except EOFError:
                break
            deadline = deadline or time.time() + budget_s   # from the first unit on
            if msg[0] == "warmup":
                started[msg[1]] = msg[2]
            elif msg[0] == "start":
                started[msg[1]] = msg[2]
                base[msg[1]] = msg[3]
            else:
                _, idx, secs, peak = msg
                out.append(Calibrated(idx, by_idx[idx], costs[idx], secs, peak, True))
        for idx in picks:
            if idx in started and all(c.idx != idx for c in out):
                # over the budget: the time so far, and the child's peak memory so far
                rss = _rss(proc.pid) if proc.is_alive() else None
                peak = rss[1] - base[idx] if rss and base.get(idx) is not None else None
                out.append(Calibrated(idx, by_idx[idx], costs[idx], time.time() - started[idx],
                                      peak, False))
                break
    finally:
        if proc.is_alive():
            proc.terminate()
        proc.join(10)
    if proc.exitcode not in (0, None) and not out:
        raise ConfigError(f"calibration of {exp.name} failed (exit code {proc.exitcode}); run "
                          "one unit with --set to see the error")
    return out


def estimate(exp: Experiment, units: Sequence[dict], pending: Sequence[tuple[int, dict]],
             params: dict, seed: int, device: str, threads: int = 1, n_units: int = 2,
             budget_s: float = 60.0) -> Estimate:
    """Calibrate (:func:`calibrate`) and fit: the dry run's estimate for the pending units."""
    if not pending or n_units <= 0:
        return fit_estimate(exp, units, pending, params, [])
    cal = calibrate(exp, pending, params, seed, device, threads, n_units, budget_s)
    return fit_estimate(exp, units, pending, params, cal)


def fit_estimate(exp: Experiment, units: Sequence[dict], pending: Sequence[tuple[int, dict]],
                 params: dict, cal: Sequence[Calibrated], grouped: bool = True) -> Estimate:
    """The estimate from calibrated units (timed now, or replayed from a finished run's
    recorded unit times by :func:`replay_estimate`); ``grouped=False``: one pooled fit, no
    group factors (the model before cost groups, kept for the comparison)."""
    est = Estimate(len(units), len(pending))
    hints = [m for _, u in pending if (m := exp.unit_memory(u, params)) is not None]
    est.memory_hint_bytes = max(hints) if hints else None
    if not pending or not cal:
        est.compute_seconds = 0.0 if not pending else None
        return est
    est.calibrated = list(cal)
    peaks = [c.peak_bytes for c in cal if c.peak_bytes is not None]
    est.memory_bytes = max(peaks) if peaks else None
    groups = dict(zip((i for i, _ in pending), cost_groups([u for _, u in pending])
                      if grouped else [()] * len(pending), strict=True))
    done = [(c.cost, c.seconds, groups.get(c.idx, ())) for c in cal if c.finished]
    cens = [(c.cost, c.seconds, groups.get(c.idx, ())) for c in cal if not c.finished]
    if not done:
        # not one unit finished: no time scale to extrapolate from (format_estimate says so)
        est.compute_seconds = None
        return est
    a, b, factor = fit_grouped(done, cens)
    costs = [float(exp.unit_cost(u, params)) for _, u in pending]
    gs = [groups[i] for i, _ in pending]
    est.unit_seconds = [(a + b * c) * factor.get(g, 1.0) for c, g in zip(costs, gs, strict=True)]
    est.compute_seconds = sum(est.unit_seconds)
    est.loo = est.factor = loo_factor_grouped(done)
    unmeasured = [t for t, g in zip(est.unit_seconds, gs, strict=True) if g not in factor]
    if unmeasured and factor:
        # groups with no calibrated unit take the pooled fit: widen by the groups' spread
        spread = max(factor.values()) / min(factor.values())
        est.groups_unmeasured = len({g for g in gs if g not in factor})
        est.factor *= 1 + (spread - 1) * sum(unmeasured) / max(est.compute_seconds, 1e-12)
    top = max((c for c, _, _ in done), default=0.0)
    if top > 0 and max(costs) > top:
        # beyond the costliest finished unit the linear model is an extrapolation: widen the
        # range by the (log) distance, and by the share of the estimate it carries
        est.extrapolated = max(costs) / top
        share = sum(t for t, c in zip(est.unit_seconds, costs, strict=True) if c > top) \
            / max(est.compute_seconds, 1e-12)
        est.factor *= 1 + share * math.log10(est.extrapolated)
    return est


def fit_grouped(points: Sequence[tuple[float, float, tuple]],
                censored: Sequence[tuple[float, float, tuple]] = (),
                rounds: int = 4) -> tuple[float, float, dict[tuple, float]]:
    """``(a, b, m)`` of ``t = m[group] (a + b cost)``: :func:`fit_unit_time` on the times
    divided by their group factor, each group factor the geometric mean of its finished units'
    ratios to the fit (normalised to a geometric mean of 1 over groups), alternated ``rounds``
    times. A group with no finished unit is absent from ``m`` (the caller uses 1, the pooled
    fit). Censored points keep their lower bound under their group's factor."""
    factor: dict[tuple, float] = {}
    a = b = 0.0
    for _ in range(rounds):
        a, b = fit_unit_time([(c, t / factor.get(g, 1.0)) for c, t, g in points],
                             [(c, t / factor.get(g, 1.0)) for c, t, g in censored])
        logs: dict[tuple, list[float]] = {}
        for c, t, g in points:
            pred = a + b * c
            if pred > 0 and t > 0:
                logs.setdefault(g, []).append(math.log(t / pred))
        if len(logs) < 2:
            break
        new = {g: sum(v) / len(v) for g, v in logs.items()}
        mean = sum(new.values()) / len(new)
        factor = {g: math.exp(v - mean) for g, v in new.items()}
    return a, b, factor


def loo_factor_grouped(points: Sequence[tuple[float, float, tuple]]) -> float:
    """:func:`loo_factor` with the group factors: each finished unit predicted from the
    others (its group's factor from its group's other units, the pooled fit where it was the
    only one); 1.5 with fewer than 3 points."""
    pts = [p for p in points if p[1] > 0]
    if len(pts) < 3:
        return 1.5
    worst = 1.0
    for i, (c, t, g) in enumerate(pts):
        a, b, m = fit_grouped(pts[:i] + pts[i + 1:])
        pred = (a + b * c) * m.get(g, 1.0)
        if pred > 0:
            worst = max(worst, pred / t, t / pred)
    return worst


def replay_estimate(exp: Experiment, params: dict, units: Sequence[dict],
                    elapsed: dict[int, float], n_units: int = 4,
                    grouped: bool = True) -> tuple[Estimate, float]:
    """The estimate a dry run would have given for a finished run, from that run's recorded
    unit times (``elapsed[idx]`` seconds) in place of a calibration, and the run's measured
    compute time (sum of ``elapsed``): the cost model checked against reality offline."""
    pending = list(enumerate(units))
    costs = {i: float(exp.unit_cost(u, params)) for i, u in pending}
    groups = dict(zip(costs, cost_groups(units), strict=True)) if grouped else None
    picks = [i for i in pick_units(costs, n_units, groups) if i in elapsed]
    cal = [Calibrated(i, units[i], costs[i], elapsed[i], None, True) for i in picks]
    return (fit_estimate(exp, units, pending, params, cal, grouped=grouped),
            sum(elapsed.values()))


def format_estimate(est: Estimate, threads: int, parallel: int) -> list[str]:
    """The dry run's lines on time: an estimate with its range, never a bare lower bound."""
    if est.compute_seconds is None:
        if est.calibrated:
            c = min(est.calibrated, key=lambda c: c.cost)
            return [f"no time estimate: the cheapest calibrated unit ({c.unit}) was still "
                    f"running after {fmt_seconds(c.seconds)}; every unit is costlier than "
                    "that, so no cost model can be fitted (give --calibrate-seconds more time)"]
        return []
    lo, hi = est.compute_seconds / est.factor, est.compute_seconds * est.factor
    wall = est.wall_seconds(parallel) or 0.0
    lines = [f"estimated compute: {fmt_seconds(est.compute_seconds)} (range {fmt_seconds(lo)}"
             f" - {fmt_seconds(hi)}) with {threads} thread(s) per unit; wall time with "
             f"{parallel} {'worker' if parallel == 1 else 'workers'} on this machine: "
             f"{fmt_seconds(wall)} (range {fmt_seconds(wall / est.factor)} - "
             f"{fmt_seconds(wall * est.factor)})"]
    n_done = sum(c.finished for c in est.calibrated)
    why = (f"cost model t = a + b * unit_cost fitted on {n_done} finished calibration unit(s)"
           + (f", leave-one-out error up to x{est.loo:.2f}" if n_done >= 3 else ""))
    if est.extrapolated > 1:
        why += (f"; the dearest pending unit costs {est.extrapolated:.3g}x the costliest "
                "finished one (extrapolated; --calibrate-seconds longer narrows the range)")
    if est.groups_unmeasured:
        why += (f"; {est.groups_unmeasured} cost group(s) of the grid's categorical axes had no "
                "calibration unit (--calibrate more)")
    if any(not c.finished for c in est.calibrated):
        why += "; an unfinished calibration unit bounds the fit from below"
    lines.append(f"  ({why})")
    return lines


# ------------------------------------------------------------------ formatting
def fmt_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


def fmt_seconds(s: float) -> str:
    if s < 120:
        return f"{s:.1f} s"
    if s < 7200:
        return f"{s / 60:.1f} min"
    if s < 172800:
        return f"{s / 3600:.1f} h"
    return f"{s / 86400:.1f} days"
