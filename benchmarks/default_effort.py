"""How far ``closest_adversarial``'s default (``budget=None``: 30 FMN steps, about 75
propagations a point) stays from the reference on the zoo's ResNet, and what twice the effort
buys (issue 17's "default within 0.5% of the reference on the ResNets").

Per norm: the zoo's ResNet at s = 12 (n = 432), ``--nets`` networks x 10 points drawn as
``benchmarks/bench_budget.py`` draws them; the reference of a point is randadv at
``budget=1000`` (bench_budget's table: within 0.01% of the best of all attacks at 2,000), or
the variant's own distance where that is smaller. Printed: the median, mean and 90th
percentile of distance / reference and the propagations of the default, of ``steps=60`` and of
``n_starts=2``.

    python benchmarks/default_effort.py --norms l1,linf --nets 5
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from randadv.attacks.closest import closest_adversarial
from randadv.nets import build_architecture


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--norms", default="l1,linf")
    ap.add_argument("--nets", type=int, default=5)
    ap.add_argument("--points", type=int, default=10)
    args = ap.parse_args()
    torch.set_num_threads(1)
    pairs = []
    for k in range(args.nets):
        net = build_architecture("resnet", 12, seed=k)
        pairs.append((net, net.sample_inputs(args.points, "bench", k)))
    for norm in args.norms.split(","):
        ref = np.concatenate([closest_adversarial(n, x, norm, (0.0, 1.0), budget=1000)
                              .distance.double().numpy() for n, x in pairs])
        for kw in ({}, {"steps": 60}, {"n_starts": 2}):
            rs = [closest_adversarial(n, x, norm, (0.0, 1.0), **kw) for n, x in pairs]
            d = np.concatenate([r.distance.double().numpy() for r in rs])
            used = np.concatenate([r.propagations.numpy() for r in rs])
            ratio = d / np.minimum(ref, d)
            print(f"resnet n=432 {norm} {kw or 'default'}: distance / reference median "
                  f"{np.median(ratio):.4f}, mean {ratio.mean():.4f}, p90 "
                  f"{np.quantile(ratio, 0.9):.4f}; propagations median {np.median(used):.0f}, "
                  f"max {used.max()}", flush=True)


if __name__ == "__main__":
    main()
