"""What a flip-step unit's time is made of (issue 16, item 1): the layer sweep's multiply-adds
against the count of :mod:`randadv.experiments._sweep_cost`.

Runs each UNIT (a JSON dict) of EXPERIMENT's PROFILE in this process, one thread, after one
untimed warm-up, counting the sweep's products (rows x d_{l-1} x d_l per layer and window) and
recording where each ray stopped (its window's end, or the batch's bound). Prints per unit: CPU
seconds (time.process_time), the rays that flipped, the measured multiply-adds, their ratio to
the count from each ray's own stopping angle and flip outcome (the zeros-crossed model alone),
and unit_cost. ``--jsonl FILE`` appends ``{"unit": ..., "seconds": cpu}`` per unit (the input of
``benchmarks/cost_model_cell_replay.py --times``).

    nice -n 5 python benchmarks/sweep_cost_probe.py depth-constant '{"d": 64, "depth": 8, "net": 0}'
"""

from __future__ import annotations

import argparse
import json
import math
import time

import torch

import randadv.attacks.piecewise_linear as pl
from randadv.experiments._sweep_cost import sweep_multiply_adds
from randadv.experiments.registry import get_experiment
from randadv.framework import UnitContext

STATE: dict = {"macs": 0, "rays": []}


def counting(add):
    def wrapped(z, t, row, h, layer, bias):
        STATE["macs"] += z.shape[0] * h.shape[1] * z.shape[1]
        return add(z, t, row, h, layer, bias)
    return wrapped


def recording(sweep):
    def wrapped(stack, x, u, t_max, max_regions, max_bytes):
        r = sweep(stack, x, u, t_max, max_regions, max_bytes)
        y0, dy0, _ = (v.double() for v in pl._eval_with_tangent(stack, x, u))
        guess = (-y0 / dy0).abs()
        lin = y0.abs() / (u.double().norm(dim=1) * x.double().norm(dim=1))
        STATE["rays"] += [(float(lin[i]), float(r[i] / guess[i]) if r[i] == r[i] else None,
                           float(t_max[i] / guess[i])) for i in range(r.numel())]
        return r
    return wrapped


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("experiment")
    ap.add_argument("units", nargs="+", help="JSON dicts")
    ap.add_argument("--profile", default="paper")
    ap.add_argument("--jsonl", default=None, help="append unit and CPU seconds here")
    args = ap.parse_args()
    torch.set_num_threads(1)
    pl._add_zero_crossings = counting(pl._add_zero_crossings)
    pl._first_root_layer_sweep = recording(pl._first_root_layer_sweep)
    exp = get_experiment(args.experiment)
    p = exp.params(args.profile)
    units = [json.loads(u) for u in args.units]
    exp.run_unit(units[0], p, UnitContext(seed=0))                    # warm-up, untimed
    for unit in units:
        STATE.update(macs=0, rays=[])
        t = time.process_time()
        exp.run_unit(unit, p, UnitContext(seed=0))
        cpu = time.process_time() - t
        widths = ([unit["d"], *exp.widths(unit, p)] if hasattr(exp, "widths")
                  else [unit["d"]] + [p["width"]] * unit["depth"])
        model = sum(sweep_multiply_adds(widths, [(1, root)], lin, bound, max_bytes=2**62)
                    for lin, root, bound in STATE["rays"] if math.isfinite(bound))
        flipped = sum(root is not None for _, root, _ in STATE["rays"])
        print(f"{unit}: cpu {cpu:.3f} s, flipped {flipped}/{len(STATE['rays'])}, "
              f"multiply-adds {STATE['macs']:.3g} ({STATE['macs'] / max(model, 1):.2f}x the "
              f"zeros-crossed count), unit_cost {exp.unit_cost(unit, p):.3g}", flush=True)
        if args.jsonl:
            with open(args.jsonl, "a") as fh:
                fh.write(json.dumps(dict(unit=unit, seconds=cpu)) + "\n")


if __name__ == "__main__":
    main()
