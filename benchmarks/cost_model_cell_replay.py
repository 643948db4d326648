"""The dry run's cost model replayed on a paper grid from per-cell unit times (issue 16, item 1).

Where a paper run's records are not at hand, its unit times per cell (the grid point without
the network index) are: TIMES is a JSON-lines file of ``{"unit": {...}, "seconds": t}`` (a
unit's net is ignored; several units of a cell are averaged), or ``--per KEY=VALUE:SECONDS``
times for the cells with that value. Every unit of EXPERIMENT's PROFILE grid (narrowed with
``--set``, as ``randadv run``) takes its cell's time; :func:`randadv.runner.cost.replay_estimate`
then calibrates on those times as a dry run would and the estimate is compared with their sum.

    python benchmarks/cost_model_cell_replay.py depth-constant --set depth=1,2,4,8,16,32,64 \\
        --set nets=6 --per depth=1:0.01 --per depth=8:0.65 ...
    python benchmarks/cost_model_cell_replay.py multilayer-single-step --times cells.jsonl \\
        --set depth=1,2,4,6,8 --set d=16,256,4096 \\
        --set family=constant,widening,narrowing,bottleneck
"""

from __future__ import annotations

import argparse
import json

from randadv.experiments.registry import get_experiment
from randadv.runner.cost import replay_estimate


def cell(unit: dict) -> tuple:
    return tuple(sorted((k, v) for k, v in unit.items() if k != "net"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("experiment")
    ap.add_argument("--profile", default="paper")
    ap.add_argument("--set", action="append", default=[], help="KEY=VALUE[,VALUE...]")
    ap.add_argument("--times", default=None, help="JSON lines of measured units")
    ap.add_argument("--per", action="append", default=[], help="KEY=VALUE:SECONDS")
    ap.add_argument("--calibrate", type=int, nargs="+", default=[4, 6])
    args = ap.parse_args()
    exp = get_experiment(args.experiment)
    p = exp.params(args.profile, overrides=dict(s.split("=", 1) for s in args.set))
    units = exp.units(p)
    sums: dict[tuple, list[float]] = {}
    if args.times:
        with open(args.times) as fh:
            for line in fh:
                r = json.loads(line)
                sums.setdefault(cell(r["unit"]), []).append(r["seconds"])
    per = {}
    for s in args.per:
        kv, t = s.rsplit(":", 1)
        k, v = kv.split("=", 1)
        per[(k, v)] = float(t)
    elapsed = {}
    for i, u in enumerate(units):
        hit = [t for (k, v), t in per.items() if str(u.get(k)) == v]
        times = sums.get(cell(u), hit)
        if not times:
            raise SystemExit(f"no time for the cell of {u}")
        elapsed[i] = sum(times) / len(times)
    for n in args.calibrate:
        est, measured = replay_estimate(exp, p, units, elapsed, n)
        print(f"{exp.name}: {len(units)} units, calibrate {n}: estimate "
              f"{est.compute_seconds / 60:.1f} min, cell times {measured / 60:.1f} min, ratio "
              f"{est.compute_seconds / measured:.2f}")


if __name__ == "__main__":
    main()
