"""Cost cut (issue 16, item 3): the safeguarded Newton of a smooth activation's smallest flipping
step stops once its bracket is a few ulps wide instead of running to ``max_iter`` (in float32 a
bracket cannot close to ``rtol = 1e-9``, so every batch ran its 100 iterations).

Times ``smallest_flip_step`` on two-layer tanh nets (the two-layer-single-step and width-window
cells that dominated their run time) with the stop (``BRACKET_ULPS = 4``) and without it
(``BRACKET_ULPS = 0``, the old behaviour), in the same run, and checks that the flips are the
same and the steps agree to float32 root precision.

    python benchmarks/bench_line_search_stop.py
"""

from __future__ import annotations

import math
import time

import torch

from randadv.attacks import line_search, smallest_flip_step
from randadv.nets.mlp import DeepRandomNet

CELLS = [(1, 10, 100), (1, 100, 1000), (1, 10, 10_000), (1, 1000, 10_000), (2, 100, 1000)]


def timed(net, x, ulps: int):
    line_search.BRACKET_ULPS = ulps
    t = time.perf_counter()
    r = smallest_flip_step(net, x, max_eta=20.0)
    return time.perf_counter() - t, r


def main() -> None:
    torch.set_num_threads(1)
    print(f"{'depth':>5s} {'d':>6s} {'k':>7s} {'before':>8s} {'after':>8s} {'ratio':>6s} "
          f"{'same flips':>10s} {'max rel. d(eta)':>15s}")
    total = [0.0, 0.0]
    try:
        for depth, d, k in CELLS:
            net = DeepRandomNet(d, k, depth, "tanh", seed=1)
            g = torch.Generator().manual_seed(2)
            x = torch.randn(50, d, generator=g)
            x = x / x.norm(dim=1, keepdim=True) * math.sqrt(d)
            t0, r0 = timed(net, x, 0)
            t1, r1 = timed(net, x, 4)
            total[0] += t0
            total[1] += t1
            rel = ((r0.eta - r1.eta).abs() / r0.eta.abs()).nan_to_num(0).max()
            print(f"{depth:5d} {d:6d} {k:7d} {t0:7.3f}s {t1:7.3f}s {t0 / t1:6.2f} "
                  f"{str(torch.equal(r0.flipped, r1.flipped)):>10s} {float(rel):15.2e}")
    finally:
        line_search.BRACKET_ULPS = 4
    print(f"total: before {total[0]:.2f} s, after {total[1]:.2f} s, "
          f"ratio {total[0] / total[1]:.2f}")


if __name__ == "__main__":
    main()
