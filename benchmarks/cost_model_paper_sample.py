"""The dry run's per-unit predictions against a random sample of timed units (issue 16, item 1).

Calibrates EXPERIMENT's PROFILE as ``randadv run --dry-run`` does (4 cost points, 30 s budget,
one thread), then draws N random units predicted under MAX seconds, runs each in this process
after one untimed warm-up and prints predicted and measured seconds; the JSON written to OUT
holds both. With ``--predict-only FILE`` (a JSON written earlier) it only predicts that file's
units, so that two versions of the cost model are compared on the same timed units. Units
are chosen among those predicted cheap: a model that underpredicts is sampled more often.

    nice -n 5 python benchmarks/cost_model_paper_sample.py depth-constant out.json -n 8
"""

from __future__ import annotations

import argparse
import json
import random
import time

import torch

from randadv.experiments.registry import get_experiment
from randadv.framework import UnitContext
from randadv.runner.cost import estimate


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("experiment")
    ap.add_argument("out", help="JSON file written")
    ap.add_argument("--profile", default="paper")
    ap.add_argument("-n", type=int, default=8, help="units timed")
    ap.add_argument("--max", type=float, default=8.0, help="largest predicted seconds drawn")
    ap.add_argument("--predict-only", default=None, help="JSON of an earlier run: its units")
    args = ap.parse_args()
    torch.set_num_threads(1)
    exp = get_experiment(args.experiment)
    p = exp.params(args.profile)
    units = exp.units(p)
    est = estimate(exp, units, list(enumerate(units)), p, 0, "cpu", 1, 4, 30.0)
    res = dict(exp=exp.name, units=len(units), calibration_s=est.calibration_seconds,
               total_est=est.compute_seconds, factor=est.factor)
    pred = est.unit_seconds
    if args.predict_only:
        with open(args.predict_only) as fh:
            idx = json.load(fh)["idx"]
        res.update(idx=idx, pred=[pred[i] for i in idx])
    else:
        cand = [i for i in range(len(units)) if pred[i] < args.max]
        idx = sorted(random.Random(1).sample(cand, min(args.n, len(cand))))
        exp.run_unit(units[idx[0]], p, UnitContext(seed=0))      # warm-up, untimed
        meas = []
        for i in idx:
            t = time.perf_counter()
            exp.run_unit(units[i], p, UnitContext(seed=0))
            meas.append(time.perf_counter() - t)
            print(f"{exp.name} unit {i} {units[i]}: predicted {pred[i]:.3f} s, measured "
                  f"{meas[-1]:.3f} s", flush=True)
        res.update(idx=idx, pred=[pred[i] for i in idx], meas=meas, candidates=len(cand))
        print(f"sum predicted / measured: {sum(res['pred']) / sum(meas):.2f}")
    with open(args.out, "w") as fh:
        json.dump(res, fh)


if __name__ == "__main__":
    main()
