"""A small custom sweep written against the library API (no CLI): how the relative adversarial
perturbation ||eta grad f(x)|| / ||x|| of random ReLU nets decays with d, for several depths,
next to the theory's d^-1/2 rate (Bubeck et al. 2021, Theorem 2; Bartlett et al. 2021, Thm 1.1).

    python examples/custom_sweep.py [--nets 5] [--inputs 20]
"""

from __future__ import annotations

import argparse
import math

import numpy as np

from randadv.attacks import smallest_flip_step
from randadv.nets import DeepRandomNet, sphere_points
from randadv.theory.gaussian import single_step_prediction


def sweep(ds=(20, 80, 320), depths=(1, 2), k: int = 200, nets: int = 5, inputs: int = 20,
          seed: int = 0) -> dict:
    rows = {}
    for depth in depths:
        th = single_step_prediction("relu", depth)
        for d in ds:
            rel = []
            for n in range(nets):
                net = DeepRandomNet(d, k, depth, "relu", seed=1000 * seed + n)
                x = sphere_points(inputs, d, math.sqrt(d), seed, n, d)
                r = smallest_flip_step(net, x)
                rel += (r.perturbation_norm / x.norm(dim=1))[r.flipped].tolist()
            rows[(depth, d)] = float(np.mean(rel))
            print(f"L={depth} d={d:5d}: mean ||delta||/||x|| = {rows[(depth, d)]:.4f} "
                  f"(linearised theory {th.perturbation_mean / math.sqrt(d):.4f})")
        logd = np.log(ds)
        slope = np.polyfit(logd, np.log([rows[(depth, d)] for d in ds]), 1)[0]
        print(f"L={depth}: fitted exponent {slope:.3f} (theory -0.5)")
    return rows


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nets", type=int, default=5)
    ap.add_argument("--inputs", type=int, default=20)
    a = ap.parse_args()
    sweep(nets=a.nets, inputs=a.inputs)
