"""The cost model of ``randadv run --dry-run``: units, estimated time on this machine, memory.

A short calibration runs a stratified sample of the pending units (the cheapest, the dearest, a
unit of every cost group, and some between, by :meth:`Experiment.unit_cost`; all equal by
default) in a fresh child process with the run's thread count, after one untimed warm-up unit,
cheapest first, timing each and measuring its peak resident memory (Linux:
``/proc/self/clear_refs``); then *replicates*: other units of the same cost point (same cost and
cost group, another network), the points carrying most of the estimate first, while the budget
and a tenth of the preliminary estimate allow, so that unit-to-unit variance at equal cost is
measured rather than taken from one unit. The replicates of a point are pooled by their trimmed
mean (the mean for two, the median for three). Time is fitted as ``t = a + b * cost`` (least
squares in relative error, a, b >= 0) through the pooled points, times the factors of the
unit's *cost group*: a factor per value of each categorical grid axis (activation, family, norm,
...: what ``unit_cost`` cannot rank), multiplied, so that an unseen combination of seen values
is predicted; a value with no calibrated unit takes factor 1 and widens the range by the spread
of the measured factors. With four points or more, one point (not the costliest) more than 2x
slower than its leave-one-out prediction is set aside as an outlier (a warm-up the untimed unit
did not absorb, a unit slowed by the machine's other work) and the fit is redone without it.
A unit still running when the calibration budget is spent is a censored point (its time is at
least what it ran) that the fit must not undercut, unless a unit of its cost point finished:
then it is pooled with that replicate at the time it ran (:func:`censored_replicates`). Work
that units share through a cache (:class:`randadv.framework.unit_cost.UnitCost`) is charged
once per key, to the first pending unit of the key. The estimate's range comes from leave-one-out
totals (the whole estimate refitted without each pooled point) and the replicates' spread,
widened where the dearest pending unit lies beyond the costliest finished one (extrapolation).
Wall time for W workers is the makespan of the units dealt in run order to the first free
worker. :func:`replay_estimate` checks the model offline against a finished run's recorded unit
times (``benchmarks/cost_model_check.py``).
"""

from __future__ import annotations

import math
import multiprocessing
import os
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from randadv.errors import ConfigError
from randadv.framework import Experiment, UnitContext
from randadv.framework.unit_cost import cost_parts
from randadv.runner.executors import RUN_DIR_ENV, ExpRef, exp_ref, run_one


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
    loo: float = 1.0                      # leave-one-out range of the total (part of factor)
    extrapolated: float = 1.0             # dearest pending cost / costliest finished cost
    groups_unmeasured: int = 0            # cost groups with no calibrated unit
    memory_bytes: int | None = None       # largest measured peak of one unit
    memory_hint_bytes: int | None = None  # largest Experiment.unit_memory over pending units
    unit_seconds: list[float] = field(default_factory=list)   # predicted, in run order
    points: int = 0                       # pooled cost points the fit used
    noise: float = 1.0                    # range from the replicates' spread (part of factor)
    outlier: tuple | None = None          # (cost, seconds, group, miss) of a point set aside
    calibration_seconds: float | None = None   # the calibration's own wall time
    calibration_budget: float | None = None    # seconds the timed units were given
    warmup_seconds: float | None = None        # auto budget: the warm-up unit's wall time

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
def _child(conn, ref: ExpRef, params: dict, seed: int, device: str, threads: int) -> None:
    """Run the units the parent sends, one at a time: ``("warmup", idx, unit, cache)``
    untimed, ``("time", idx, unit, cache)`` timed with its peak memory; ``None`` ends.
    ``cache``: the run folder whose cache holds the unit's shared work (the unit reads it, as
    it will in the run), or None: the unit runs without any cache (it reads none and writes
    none: a dry run leaves the folders as they were)."""
    torch.set_num_threads(threads)
    no_cache = {**params, "model_dir": ""} if params.get("model_dir") else params
    conn.send(("ready", None, None, None))     # the budget starts now, not at process start
    while (msg := conn.recv()) is not None:
        kind, idx, unit, cache = msg
        if cache is None:
            os.environ.pop(RUN_DIR_ENV, None)
        else:
            os.environ[RUN_DIR_ENV] = str(cache)
        p = params if cache is not None else no_cache
        if kind == "warmup":    # lazy initialisations, imports, allocator: not timed
            run_one(ref, idx, unit, p, seed, device, threads)
            conn.send(("warm", idx, None, None))
            continue
        can_peak = _reset_peak()
        before = _rss()
        conn.send(("start", idx, time.time(), before[0] if can_peak and before else None))
        _, _, _, secs = run_one(ref, idx, unit, p, seed, device, threads)
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
    """Calibration units: the cheapest, the dearest, then (with cost groups) a unit of every
    other group, largest groups first (the one at the middle of the group's cumulative cost),
    then units spread between, alternately at quantiles of the cumulative cost (where the
    run's time goes: a grid of many cheap units and a few dear ones is timed among the dear
    ones too) and of the rank (where the units are: a calibration cut short by its budget
    still has points between), the nearest unpicked unit by rank at a cost point not yet
    picked where there is one."""
    order = sorted(costs, key=lambda i: (costs[i], i))
    if not order:
        return []

    def point(i: int) -> tuple:
        return costs[i], (groups or {}).get(i, ())

    def at_share(units: list[int], q: float) -> int:
        total, run = sum(costs[i] for i in units), 0.0
        for k, i in enumerate(units):
            run += costs[i]
            if run >= q * total:
                return k
        return len(units) - 1

    picks = [order[0], order[-1]]
    if groups and len(set(groups.values())) > 1:
        sizes: dict[tuple, int] = {}
        for i in order:
            sizes[groups[i]] = sizes.get(groups[i], 0) + 1
        seen = {groups[i] for i in picks}
        for g in sorted(sizes, key=lambda g: (-sizes[g], g)):
            if g not in seen and len(picks) < n:
                members = [i for i in order if groups[i] == g]
                picks.insert(-1, members[at_share(members, 0.5)])
                seen.add(g)
    for j in range(1, max(0, n - 2) + 1):
        if len(dict.fromkeys(picks)) >= n or len(dict.fromkeys(picks)) >= len(order):
            break
        k = at_share(order, j / (n - 1)) if j % 2 else j * (len(order) - 1) // (n - 1)
        taken = {point(i) for i in picks}
        free = [r for r in range(len(order)) if order[r] not in picks]
        fresh = [r for r in free if point(order[r]) not in taken]   # a new cost point first
        picks.insert(-1, order[min(fresh or free, key=lambda r: (abs(r - k), r))])
    return list(dict.fromkeys(picks))[:n]


def pick_replicates(costs: dict[int, float], picks: Sequence[int], repeats: int,
                    groups: dict[int, tuple] | None = None) -> list[int]:
    """Replicates of the calibration ``picks``: up to ``repeats - 1`` other units of each
    pick's cost point (equal cost and cost group), in index order, the points carrying the
    largest share of the total cost (units at the point x cost) first, round by round."""
    point = {i: (costs[i], (groups or {}).get(i, ())) for i in costs}
    at: dict[tuple, list[int]] = {}
    for i in sorted(costs):
        at.setdefault(point[i], []).append(i)
    chosen = set(picks)
    order = sorted(dict.fromkeys(picks), key=lambda i: (-len(at[point[i]]) * costs[i], i))
    out: list[int] = []
    for _ in range(max(0, repeats - 1)):
        for p in order:
            nxt = next((i for i in at[point[p]] if i not in chosen), None)
            if nxt is not None:
                out.append(nxt)
                chosen.add(nxt)
    return out


REPLICATE_SHARE = 0.1
"""Replicates run while the calibration has spent at most this share of the preliminary
estimate (or a sixth of the budget, whichever is larger): a cheap run gets a cheap dry run."""

POOL_COST_TOL = 0.05     # calibration costs this close are one cost point (pool_replicates)

# --calibrate-seconds auto: the budget for quick units, grown with the warm-up unit's time
AUTO_BASE_S = 60.0
AUTO_PER_WARMUP = 3.0
AUTO_WARMUP_CAP_S = 3600.0


def parse_calibration_budget(text: str) -> float | None:
    """``--calibrate-seconds`` text: ``auto`` -> None (:func:`auto_budget`), else a finite
    number of seconds >= 1; anything else raises ``ValueError`` naming the problem."""
    if str(text).strip().lower() == "auto":
        return None
    try:
        seconds = float(text)
    except ValueError:
        raise ValueError(f"{text!r} is neither a number of seconds nor 'auto'") from None
    if not 1 <= seconds < math.inf:
        raise ValueError(f"{text!r}: give at least 1 second (finite), or 'auto'")
    return seconds


def auto_budget(warmup_s: float, base_s: float | None = None) -> float:
    """The timed calibration's budget under ``--calibrate-seconds auto``: ``base_s``, or
    ``AUTO_PER_WARMUP`` x the warm-up unit's wall time (the cheapest picked unit, so a
    lower bound on every unit's time) when that is longer, so that the cheapest unit timed
    again and dearer ones fit: experiments whose units take minutes (attack-optimality's
    exact solves, lazy-multilayer at depth 2) get an estimate without a hand-set budget."""
    return max(AUTO_BASE_S if base_s is None else base_s, AUTO_PER_WARMUP * warmup_s)


def auto_rule(warmup_s: float | None = None) -> str:
    """The words of :func:`auto_budget`'s rule, with the warm-up's time when known (the dry
    run's progress line and its summary say it the same way)."""
    time = f"'s {fmt_seconds(warmup_s)}" if warmup_s is not None else ""
    return f"the larger of {AUTO_BASE_S:g} s and {AUTO_PER_WARMUP:g}x the warm-up unit{time}"


def calibration_plan(costs: dict[int, float], groups: dict[int, tuple], n_units: int,
                     repeats: int) -> tuple[list[int], list[int]]:
    """``(picks, replicates)``: :func:`pick_units` cheapest first, then
    :func:`pick_replicates`."""
    picks = sorted(pick_units(costs, n_units, groups), key=lambda i: (costs[i], i))
    return picks, pick_replicates(costs, picks, repeats, groups)


def drive_calibration(costs: dict[int, float], groups: dict[int, tuple], picks: Sequence[int],
                      replicates: Sequence[int], time_unit, budget_s: float) -> list[Calibrated]:
    """The calibration's schedule, for a real calibration and its offline replay alike: every
    pick in order (but a pick other than the dearest that the points so far predict beyond
    the budget left, which would end the calibration on one censored point, gives way to the
    dearest unit they predict within an eighth of the budget left: the points climb), then a
    replicate only when its point's first time fits both in the budget left and in
    ``max(budget_s / 6, REPLICATE_SHARE x`` the estimate fitted on the picks ``)``.
    ``time_unit(idx, seconds_left)`` returns the unit's :class:`Calibrated` (censored
    at ``seconds_left``) or None when nothing more can run; a censored unit ends it."""
    out: list[Calibrated] = []
    spent = 0.0
    used = set(picks)
    for n, idx in enumerate(picks):
        done = [(c.cost, c.seconds, groups.get(c.idx, ())) for c in out]
        if done and n < len(picks) - 1:
            fit, left = fit_robust(done), budget_s - spent
            if fit.predict(costs[idx], groups.get(idx, ())) > left:
                # it would spend the budget on one point (the dearest still bounds the fit):
                # the dearest unit predicted within an eighth of the budget left instead
                fits = [i for i in costs if i not in used
                        and fit.predict(costs[i], groups.get(i, ())) <= left / 8]
                if not fits:
                    continue
                idx = max(fits, key=lambda i: (costs[i], -i))
                used.add(idx)
        c = time_unit(idx, budget_s - spent)
        if c is None:
            return out
        out.append(c)
        spent += c.seconds
        if not c.finished:
            return out
    done = [(c.cost, c.seconds, groups.get(c.idx, ())) for c in out]
    if not replicates or not done:
        return out
    fit = fit_robust(done)
    prelim = sum(fit.predict(c, groups.get(i, ())) for i, c in costs.items())
    cap = min(budget_s, max(budget_s / 6, REPLICATE_SHARE * prelim))
    first = {(c.cost, groups.get(c.idx, ())): c.seconds for c in out}
    for idx in replicates:
        t = first.get((costs[idx], groups.get(idx, ())), math.inf)
        if spent + t > cap:
            continue
        c = time_unit(idx, budget_s - spent)
        if c is None:
            break
        out.append(c)
        spent += c.seconds
        if not c.finished:
            break
    return out


def calibrate(exp: Experiment, pending: Sequence[tuple[int, dict]], params: dict, seed: int,
              device: str, threads: int = 1, n_units: int = 2, budget_s: float | None = 60.0,
              repeats: int = 2, out: str | Path | None = None,
              cached: Collection[int] = (), progress: Callable[[str], None] | None = None
              ) -> tuple[list[Calibrated], float, float | None]:
    """Run up to ``n_units`` representative pending units (:func:`pick_units`) in a fresh
    process after an untimed warm-up, then their replicates (:func:`pick_replicates`, up to
    ``repeats`` units per cost point) as :func:`drive_calibration` schedules them within
    ``budget_s`` seconds (from the warm-up on, process start-up excluded). ``budget_s=None``
    (auto): the warm-up may take up to ``AUTO_WARMUP_CAP_S`` and the timed units then get
    :func:`auto_budget` of its wall time. Returns ``(calibrated, budget, warm-up seconds)``
    (the budget the timed units had, from the warm-up on for a fixed ``budget_s``; the
    warm-up's time under auto, else None). The units' records
    are dropped. A unit of ``cached`` (its shared work is in the cache of the run folder
    ``out``: :meth:`Experiment.shared_work_cached`) runs on that cache, as it will in the run,
    and is fitted at its own cost; every other unit runs without a cache (it pays both parts
    and writes nothing). ``progress`` gets one line as the warm-up starts and as each timed
    unit ends (a calibration of minute-long units is not silent)."""
    say = progress or (lambda line: None)
    by_idx = dict(pending)
    cache_dir = str(Path(out).resolve()) if out is not None else None
    cached = set(cached) if cache_dir is not None else set()
    parts = {i: cost_parts(exp.unit_cost(u, params)) for i, u in pending}
    costs = {i: own if i in cached else own + shared for i, (own, shared, _) in parts.items()}
    bad = [i for i, c in costs.items() if not c > 0]
    if bad:
        raise ConfigError(f"{exp.name}.unit_cost must be > 0, got {costs[bad[0]]} for unit "
                          f"{by_idx[bad[0]]}")
    group_of = dict(zip((i for i, _ in pending), cost_groups([u for _, u in pending]),
                        strict=True))
    picks, reps = calibration_plan(costs, group_of, n_units, repeats)
    ctx = multiprocessing.get_context("spawn")
    conn, child_conn = ctx.Pipe(duplex=True)
    proc = ctx.Process(target=_child, daemon=True, args=(
        child_conn, exp_ref(exp), params, seed, device, threads))
    proc.start()
    child_conn.close()

    def run(kind: str, idx: int, left: float) -> Calibrated | None:
        """One unit in the child within ``left`` seconds: its Calibrated (censored when over
        the budget), None when the child died or a warm-up went through."""
        try:
            conn.send((kind, idx, by_idx[idx], cache_dir if idx in cached else None))
        except (BrokenPipeError, OSError):
            return None
        started, base, deadline = time.time(), None, time.time() + max(0.0, left)
        while conn.poll(max(0.0, deadline - time.time())):
            try:
                msg = conn.recv()
            except EOFError:
                return None
            if msg[0] == "warm":
                return None
            if msg[0] == "start":
                started, base = msg[2], msg[3]
                continue
            _, _, secs, peak = msg
            return Calibrated(idx, by_idx[idx], costs[idx], secs, peak, True)
        # over the budget: the time so far, and the child's peak memory so far
        rss = _rss(proc.pid) if proc.is_alive() else None
        peak = rss[1] - base if rss and base is not None else None
        return Calibrated(idx, by_idx[idx], costs[idx], time.time() - started, peak, False)

    out: list[Calibrated] = []
    budget = budget_s if budget_s is not None else auto_budget(0.0)
    warm_s = None
    try:
        try:
            ready = bool(picks) and conn.recv()[0] == "ready"
        except EOFError:
            ready = False
        if ready:
            t0 = time.time()
            say(f"calibrating: untimed warm-up on unit {picks[0]} {by_idx[picks[0]]}, then up "
                f"to {len(picks)} units and their replicates within "
                + (f"{budget_s:g} s" if budget_s is not None else auto_rule()))
            warm = run("warmup", picks[0], budget_s if budget_s is not None
                       else AUTO_WARMUP_CAP_S)
            if warm is not None:        # the warm-up ran past the budget: no time scale
                out = [warm]
            elif proc.is_alive():
                if budget_s is None:
                    warm_s = time.time() - t0
                    budget = left = auto_budget(warm_s)
                    say(f"  warm-up {fmt_seconds(warm_s)}: the timed units get "
                        f"{fmt_seconds(budget)}")
                else:
                    left = budget_s - (time.time() - t0)

                def timed(i: int, left: float) -> Calibrated | None:
                    c = run("time", i, left)
                    if c is not None:
                        say(f"  unit {c.idx} {c.unit}: {fmt_seconds(c.seconds)}"
                            + ("" if c.finished else " so far (over the budget: stopped)"))
                    return c

                out = drive_calibration(costs, group_of, picks, reps, timed, left)
        if proc.is_alive() and all(c.finished for c in out):
            conn.send(None)
    finally:
        proc.join(0.5)
        if proc.is_alive():
            proc.terminate()
        proc.join(10)
    if proc.exitcode not in (0, None, -15) and not out:
        raise ConfigError(f"calibration of {exp.name} failed (exit code {proc.exitcode}); run "
                          "one unit with --set to see the error")
    return out, budget, warm_s


def estimate(exp: Experiment, units: Sequence[dict], pending: Sequence[tuple[int, dict]],
             params: dict, seed: int, device: str, threads: int = 1, n_units: int = 2,
             budget_s: float | None = 60.0, repeats: int = 2, out: str | Path | None = None,
             progress: Callable[[str], None] | None = None) -> Estimate:
    """Calibrate (:func:`calibrate`) and fit: the dry run's estimate for the pending units
    (``out``: the run folder, whose cache may already hold work the units share;
    ``budget_s=None``: the auto budget, :func:`auto_budget`; ``progress``: the calibration's
    lines as they happen)."""
    if not pending or n_units <= 0:
        return fit_estimate(exp, units, pending, params, [])
    t0 = time.perf_counter()
    ctx = UnitContext(seed=seed, out=Path(out).resolve() if out is not None else None)
    cached = {i for i, u in pending if exp.shared_work_cached(u, params, ctx)}
    cal, budget, warm_s = calibrate(exp, pending, params, seed, device, threads, n_units,
                                    budget_s, repeats, ctx.out, cached, progress)
    est = fit_estimate(exp, units, pending, params, cal,
                       costs=pending_costs(exp, units, pending, params, cached))
    est.calibration_seconds = time.perf_counter() - t0
    est.calibration_budget, est.warmup_seconds = budget, warm_s
    return est


def pending_costs(exp: Experiment, units: Sequence[dict], pending: Sequence[tuple[int, dict]],
                  params: dict, cached: Collection[int] = ()) -> list[float]:
    """The cost each pending unit will pay in run order: its ``unit_cost``, less the part it
    shares with other units (a ``UnitCost`` with a key) unless it is the first of its key to
    run (a unit already stored has paid the key's share: the cache holds its model) or
    ``cached`` holds its index (its shared work is in the cache already, e.g. a model trained
    by a run that stopped before the unit was stored)."""
    todo = {i for i, _ in pending}
    parts = {i: cost_parts(exp.unit_cost(u, params)) for i, u in enumerate(units)}
    paid = {parts[i][2] for i in parts if (i not in todo or i in cached)
            and parts[i][2] is not None}
    out = []
    for i, _ in pending:
        own, shared, key = parts[i]
        out.append(own + (shared if key is not None and key not in paid else 0.0))
        if key is not None:
            paid.add(key)
    return out


def pool_replicates(points: Sequence[tuple[float, float, tuple]]
                    ) -> list[tuple[float, float, tuple, int, float]]:
    """Finished ``(cost, seconds, group)`` points pooled by cost point: ``(cost, seconds,
    group, n, log_sd)`` with the trimmed mean of the point's n times (the extremes dropped from
    3 on: the median for 3) and the standard deviation of their logs (0 for one). Costs of a
    group within ``POOL_COST_TOL`` of the cheapest of their cost point are one point (at their
    mean cost): a cost model cannot tell them apart, and fitting a line through their noise
    would weight the fastest (lazy-multilayer's units differ by 0.3% in cost and 3.8x in
    time)."""
    at: dict[tuple[float, tuple], list[tuple[float, float]]] = {}
    start: dict[tuple, float] = {}                # each group's current cost point
    for c, t, g in sorted((p for p in points if p[1] > 0), key=lambda p: (repr(p[2]), p[0])):
        if g not in start or c > start[g] * (1 + POOL_COST_TOL):
            start[g] = c
        at.setdefault((start[g], g), []).append((c, t))
    out = []
    for (_, g), cts in sorted(at.items(), key=lambda kv: (kv[0][0], repr(kv[0][1]))):
        c = sum(ci for ci, _ in cts) / len(cts)
        ts = sorted(t for _, t in cts)
        core = ts[1:-1] if len(ts) >= 3 else ts
        logs = [math.log(t) for t in ts]
        mu = sum(logs) / len(logs)
        sd = math.sqrt(sum((v - mu) ** 2 for v in logs) / (len(logs) - 1)) if len(ts) > 1 \
            else 0.0
        out.append((c, sum(core) / len(core), g, len(ts), sd))
    return out


def censored_replicates(done: Sequence[tuple[float, float, tuple]],
                        censored: Sequence[tuple[float, float, tuple]]
                        ) -> tuple[list[tuple[float, float, tuple]],
                                   list[tuple[float, float, tuple]]]:
    """``(done, censored)`` with each censored ``(cost, at-least-seconds, group)`` point that
    has a finished replicate (same group, cost within ``POOL_COST_TOL``) moved to ``done`` at
    its lower bound: pooled with the finished ones (:func:`pool_replicates`) it raises their
    mean and measures their spread, where as a bound on its own it would set every unit of
    the cost point to at least its time (lazy-adversarial-training at d = 196: one unit of
    745 s finished, one stopped at 1490 s; its units took 194-1541 s, mean 632 s, and the
    bound made the estimate 2.36x the measured time, the pooled mean 1.77x with a range that
    holds it)."""
    out, left = list(done), []
    for c, t, g in censored:
        if any(gd == g and abs(cd - c) <= POOL_COST_TOL * min(cd, c) for cd, _, gd in done):
            out.append((c, t, g))
        else:
            left.append((c, t, g))
    return out, left


@dataclass
class Fit:
    """The cost model fitted on calibration times: ``t = (a + b cost) prod_k factor[k,
    group[k]]`` (:func:`fit_grouped`)."""

    a: float
    b: float
    factor: dict[tuple[int, str], float]
    noise: float                   # range factor from the replicates' spread
    points: int                    # pooled cost points used
    outlier: tuple[float, float, tuple, float] | None = None   # (cost, s, group, miss) set aside
    # the pooled (cost, seconds, group) points used, the outlier set aside (loo_total_factor)
    pooled: list[tuple[float, float, tuple]] = field(default_factory=list, repr=False)

    def predict(self, cost: float, group: tuple) -> float:
        return (self.a + self.b * cost) * group_factor(self.factor, group)


def fit_robust(points: Sequence[tuple[float, float, tuple]],
               censored: Sequence[tuple[float, float, tuple]] = ()) -> Fit:
    """:func:`fit_grouped` on the replicates pooled by cost point (:func:`pool_replicates`);
    with 4 points or more, the point slowest against its leave-one-out prediction is set
    aside when it is more than 2x slower (a warm-up or the machine's other work only ever
    slow a unit down; a unit faster than the others predict is the model's error, kept), is
    not the costliest (whose loss would turn the
    fit into an extrapolation) and shares each of its axis values with another point (else
    nothing predicts it: it is not an outlier, it is the only measure of that value).
    Range factor ``noise``: ``exp(sd / sqrt(n))`` of the noisiest replicated point (the
    uncertainty of its mean; the estimate multiplies it by :func:`loo_total_factor`)."""
    pooled = pool_replicates(points)
    pts = [(c, t, g) for c, t, g, _, _ in pooled]
    outlier = None
    if len(pts) >= 4:
        top = max(c for c, _, _ in pts)
        misses = [(loo_miss(pts, i, slower=True), i) for i in range(len(pts))
                  if pts[i][0] < top and group_measured(pts[i][2], pts[:i] + pts[i + 1:])]
        worst, i = max(misses, default=(1.0, -1))
        if worst > 2.0:
            outlier = (*pts[i], worst)
            pts = pts[:i] + pts[i + 1:]
            pooled = pooled[:i] + pooled[i + 1:]
    a, b, factor = fit_grouped(pts, censored)
    noise = max((math.exp(sd / math.sqrt(n)) for *_, n, sd in pooled if n > 1), default=1.0)
    return Fit(a, b, factor, noise, len(pts), outlier, pts)


def loo_total_factor(fit: Fit, costs: Sequence[float], groups: Sequence[tuple],
                     total: float) -> float:
    """The estimate's leave-one-out range: the largest ratio (either way) between the total
    and the total refitted without one of the fit's pooled cost points (``fit.pooled``: the
    outlier set aside stays out); 1.5 with fewer than 3 points (no test possible). A point
    that carries little of the total (a cheap unit badly predicted) moves it little: the range
    is the total's, not the worst unit's."""
    pts = fit.pooled
    if len(pts) < 3 or total <= 0:
        return 1.5
    worst = 1.0
    for i in range(len(pts)):
        a, b, m = fit_grouped(pts[:i] + pts[i + 1:])
        other = sum((a + b * c) * group_factor(m, g) for c, g in zip(costs, groups,
                                                                     strict=True))
        if other > 0:
            worst = max(worst, other / total, total / other)
    return worst


def loo_miss(points: Sequence[tuple[float, float, tuple]], i: int,
             slower: bool = False) -> float:
    """The ratio (either way; ``slower``: time / prediction) between point ``i``'s time and
    its prediction by :func:`fit_grouped` from the other points (its axis values' factors
    from the other points with those values, 1 for a value it alone has)."""
    c, t, g = points[i]
    a, b, m = fit_grouped(list(points[:i]) + list(points[i + 1:]))
    pred = (a + b * c) * group_factor(m, g)
    if not (pred > 0 and t > 0):
        return 1.0
    return t / pred if slower else max(pred / t, t / pred)


def fit_estimate(exp: Experiment, units: Sequence[dict], pending: Sequence[tuple[int, dict]],
                 params: dict, cal: Sequence[Calibrated], grouped: bool = True,
                 costs: Sequence[float] | None = None) -> Estimate:
    """The estimate from calibrated units (timed now, or replayed from a finished run's
    recorded unit times by :func:`replay_estimate`); ``grouped=False``: one pooled fit, no
    group factors (the model before cost groups, kept for the comparison); ``costs``: the
    pending units' :func:`pending_costs` where the caller has them."""
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
    done, cens = censored_replicates(done, cens)
    if not done:
        # not one unit finished: no time scale to extrapolate from (format_estimate says so)
        est.compute_seconds = None
        return est
    fit = fit_robust(done, cens)
    if costs is None:
        costs = pending_costs(exp, units, pending, params)
    gs = [groups[i] for i, _ in pending]
    est.unit_seconds = [fit.predict(c, g) for c, g in zip(costs, gs, strict=True)]
    est.compute_seconds = sum(est.unit_seconds)
    est.points, est.outlier, est.noise = fit.points, fit.outlier, fit.noise
    est.loo = loo_total_factor(fit, costs, gs, est.compute_seconds)
    est.factor = est.loo * fit.noise
    kept = [p for p in done
            if fit.outlier is None or (p[0], p[2]) != (fit.outlier[0], fit.outlier[2])]
    known = {g: group_measured(g, kept) for g in set(gs)}
    unmeasured = [t for t, g in zip(est.unit_seconds, gs, strict=True) if not known[g]]
    seen = [group_factor(fit.factor, g) for _, _, g in kept]
    if unmeasured and max(seen) > min(seen):
        # a value with no calibrated unit takes factor 1: widen by the measured groups' spread
        spread = max(seen) / min(seen)
        est.groups_unmeasured = sum(not k for k in known.values())
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
                rounds: int = 8) -> tuple[float, float, dict[tuple[int, str], float]]:
    """``(a, b, m)`` of ``t = (a + b cost) prod_k m[k, group[k]]``: a factor per value of
    each categorical axis (its main effect: a norm, an activation, a family), not per
    combination, so that a grid of several axes is not left with one point per factor.
    :func:`fit_unit_time` on the times divided by their group's factor, then each axis's
    factors the geometric mean of its points' ratios to the rest of the model (normalised to
    a geometric mean of 1 over the axis's values), alternated ``rounds`` times. A value with
    no finished point is absent from ``m`` (:func:`group_factor` takes 1 for it). Censored
    points keep their lower bound under their group's factor."""
    m: dict[tuple[int, str], float] = {}
    a = b = 0.0
    axes = max((len(g) for _, _, g in points), default=0)
    for _ in range(rounds):
        a, b = fit_unit_time([(c, t / group_factor(m, g)) for c, t, g in points],
                             [(c, t / group_factor(m, g)) for c, t, g in censored])
        changed = False
        for k in range(axes):
            logs: dict[tuple[int, str], list[float]] = {}
            for c, t, g in points:
                rest = (a + b * c) * group_factor(m, g) / m.get((k, g[k]), 1.0)
                if rest > 0 and t > 0:
                    logs.setdefault((k, g[k]), []).append(math.log(t / rest))
            if len(logs) < 2:
                continue
            new = {v: sum(x) / len(x) for v, x in logs.items()}
            mean = sum(new.values()) / len(new)
            for v, x in new.items():
                f = math.exp(x - mean)
                changed |= abs(f / m.get(v, 1.0) - 1) > 1e-12
                m[v] = f
        if not changed:
            break
    return a, b, m


def group_factor(m: dict[tuple[int, str], float], group: tuple) -> float:
    """The product of a group's axis factors (:func:`fit_grouped`), 1 for an unmeasured
    value."""
    return math.prod(m.get((k, v), 1.0) for k, v in enumerate(group))


def group_measured(group: tuple, points: Sequence[tuple[float, float, tuple]]) -> bool:
    """Whether every axis value of ``group`` has a finished point (a grid with a single
    value on an axis has no factor for it, and needs none)."""
    seen = {(k, v) for _, _, g in points for k, v in enumerate(g)}
    return all((k, v) in seen for k, v in enumerate(group))


def loo_factor_grouped(points: Sequence[tuple[float, float, tuple]]) -> float:
    """:func:`loo_factor` with the group factors: the largest :func:`loo_miss` over the
    points; 1.5 with fewer than 3 points."""
    pts = [p for p in points if p[1] > 0]
    if len(pts) < 3:
        return 1.5
    return max(loo_miss(pts, i) for i in range(len(pts)))


def replay_estimate(exp: Experiment, params: dict, units: Sequence[dict],
                    elapsed: dict[int, float], n_units: int = 4, grouped: bool = True,
                    repeats: int = 2, budget_s: float | None = 60.0
                    ) -> tuple[Estimate, float]:
    """The estimate a dry run would have given for a finished run, from that run's recorded
    unit times (``elapsed[idx]`` seconds) in place of a calibration (the same units and
    replicates, scheduled within the same budget by :func:`drive_calibration`;
    ``budget_s=None``: the auto budget of the first pick's recorded time), and the
    run's measured compute time (sum of ``elapsed``): the cost model checked against reality
    offline. A replayed unit that found its shared work
    (a ``UnitCost`` with a key) done by an earlier unit of the run is fitted at its own
    cost."""
    pending = list(enumerate(units))
    costs = {i: float(exp.unit_cost(u, params)) for i, u in pending}
    groups = dict(zip(costs, cost_groups(units), strict=True)) if grouped \
        else dict.fromkeys(costs, ())
    picks, reps = calibration_plan(costs, groups, n_units, repeats)
    fitted = pending_costs(exp, units, pending, params)
    paid = dict(zip(costs, fitted, strict=True))

    def recorded(idx: int, left: float) -> Calibrated | None:
        if idx not in elapsed:
            return None
        return Calibrated(idx, units[idx], paid[idx], min(elapsed[idx], left), None,
                          elapsed[idx] <= left)

    warm_s = None
    if budget_s is None:
        warm_s = elapsed.get(picks[0], math.inf) if picks else 0.0
        budget_s = auto_budget(warm_s) if warm_s <= AUTO_WARMUP_CAP_S else AUTO_WARMUP_CAP_S
    cal = drive_calibration(costs, groups, picks, reps, recorded, budget_s)
    est = fit_estimate(exp, units, pending, params, cal, grouped=grouped, costs=fitted)
    est.calibration_budget, est.warmup_seconds = budget_s, warm_s
    return est, sum(elapsed.values())


def format_estimate(est: Estimate, threads: int, parallel: int) -> list[str]:
    """The dry run's lines on time: an estimate with its range, never a bare lower bound."""
    if est.compute_seconds is None:
        if est.calibrated:
            c = min(est.calibrated, key=lambda c: c.cost)
            return [f"no time estimate: the cheapest calibrated unit ({c.unit}) was still "
                    f"running after {fmt_seconds(c.seconds)}; every unit is costlier than "
                    "that, so no cost model can be fitted (give --calibrate-seconds more "
                    f"time{_budget_note(est)})"]
        return []
    lo, hi = est.compute_seconds / est.factor, est.compute_seconds * est.factor
    wall = est.wall_seconds(parallel) or 0.0
    lines = [f"estimated compute: {fmt_seconds(est.compute_seconds)} (range {fmt_seconds(lo)}"
             f" - {fmt_seconds(hi)}) with {threads} thread(s) per unit; wall time with "
             f"{parallel} {'worker' if parallel == 1 else 'workers'} on this machine: "
             f"{fmt_seconds(wall)} (range {fmt_seconds(wall / est.factor)} - "
             f"{fmt_seconds(wall * est.factor)})"]
    n_done = sum(c.finished for c in est.calibrated)
    why = (f"cost model t = m_group (a + b * unit_cost) fitted on {n_done} finished calibration "
           f"unit(s) at {est.points} cost point(s)"
           + (f", leave-one-out total within x{est.loo:.2f}" if est.points >= 3 else "")
           + (f", replicates' spread x{est.noise:.2f}" if est.noise > 1 else ""))
    if est.outlier is not None:
        c, t, _, miss = est.outlier
        why += (f"; the point at cost {c:g} ({t:.3g} s, x{miss:.1f} off the others' fit) was "
                "set aside as an outlier")
    if est.extrapolated >= 1.05:      # a few percent past the data: not worth a line
        why += (f"; the dearest pending unit costs {est.extrapolated:.3g}x the costliest "
                "finished one (extrapolated; --calibrate-seconds longer narrows the range)")
    if est.groups_unmeasured:
        why += (f"; {est.groups_unmeasured} cost group(s) of the grid's categorical axes had no "
                "calibration unit (--calibrate more)")
    if any(not c.finished for c in est.calibrated):
        why += "; an unfinished calibration unit bounds the fit from below"
    lines.append(f"  ({why})")
    if est.calibration_seconds is not None:
        lines.append(f"  (the calibration itself took {fmt_seconds(est.calibration_seconds)}, "
                     f"process start-up included{_budget_note(est)}; --calibrate 0 skips it)")
    return lines


def _budget_note(est: Estimate) -> str:
    if est.calibration_budget is None:
        return ""
    if est.warmup_seconds is None:
        return f"; budget {fmt_seconds(est.calibration_budget)}"
    return (f"; budget {fmt_seconds(est.calibration_budget)} (auto: "
            f"{auto_rule(est.warmup_seconds)})")


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
