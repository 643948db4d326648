"""The cost model of ``randadv run --dry-run``: units, estimated time on this machine, memory.

A short calibration runs the cheapest and the dearest pending unit (by
:meth:`Experiment.unit_cost`, all equal by default: then the first and the last unit) in a fresh
child process with the run's thread count, timing each and measuring its peak resident memory
(Linux: ``/proc/self/clear_refs``). Time is fitted as ``a + b * cost`` through the two and summed
over the pending units. Nothing is written anywhere; a unit still running when the calibration
budget is spent gives a lower bound.
"""

from __future__ import annotations

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
    lower_bound: bool = False
    memory_bytes: int | None = None       # largest measured peak of one unit
    memory_hint_bytes: int | None = None  # largest Experiment.unit_memory over pending units

    def wall_seconds(self, parallel: int) -> float | None:
        if self.compute_seconds is None:
            return None
        return self.compute_seconds / max(1, min(parallel, self.units_pending))


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


def pick_units(costs: dict[int, float], n: int) -> list[int]:
    """Calibration units: the cheapest, the dearest, then spread between (by cost, then index)."""
    order = sorted(costs, key=lambda i: (costs[i], i))
    if not order:
        return []
    picks = [order[0], order[-1]]
    for j in range(1, max(0, n - 2) + 1):
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
    picks = sorted(pick_units(costs, n_units), key=lambda i: (costs[i], i))
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
    est = Estimate(len(units), len(pending))
    hints = [m for _, u in pending if (m := exp.unit_memory(u, params)) is not None]
    est.memory_hint_bytes = max(hints) if hints else None
    if not pending or n_units <= 0:
        est.compute_seconds = 0.0 if not pending else None
        return est
    cal = calibrate(exp, pending, params, seed, device, threads, n_units, budget_s)
    est.calibrated = cal
    peaks = [c.peak_bytes for c in cal if c.peak_bytes is not None]
    est.memory_bytes = max(peaks) if peaks else None
    if not cal:
        return est
    est.lower_bound = not all(c.finished for c in cal)
    lo, hi = min(cal, key=lambda c: c.cost), max(cal, key=lambda c: c.cost)
    if hi.cost > lo.cost:
        b = max(0.0, (hi.seconds - lo.seconds) / (hi.cost - lo.cost))
        a = max(0.0, lo.seconds - b * lo.cost)
    else:
        a, b = sum(c.seconds for c in cal) / len(cal), 0.0
    est.compute_seconds = sum(a + b * float(exp.unit_cost(u, params)) for _, u in pending)
    return est


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
