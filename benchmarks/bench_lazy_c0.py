"""Cost cut (issue 16, item 3): one lazy-regime training run serves every C0 of a grid.

lazy-sgd's Figures 3/6 train the same net (same initialisation, same data order) once per
C0 = 10, 20, 30, 40; C0 only sets the ball where SGD stops, so the run for the largest ball
passes the exit of every smaller one. ``train_lazy_sgd_c0s`` snapshots the model there.

Times, in the same run and on one thread (CPU seconds, so other jobs on the machine count
little), the separate runs (``train_lazy_sgd`` once per C0: before) and the shared run
(``train_lazy_sgd_c0s``: after) on MNIST 0 vs 1 (||x|| = 1), and checks that every C0's
weights and steps are identical.

    python benchmarks/bench_lazy_c0.py [--d 100] [--m 1000] [--epochs 20] [--n-train 0]
"""

from __future__ import annotations

import argparse
import time

import torch

from randadv.experiments._lazy_common import mnist01
from randadv.train import LazyTrainConfig, LazyTwoLayerNet, train_lazy_sgd, train_lazy_sgd_c0s


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--d", type=int, default=100)
    ap.add_argument("--m", type=int, default=1000)
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--n-train", type=int, default=0, help="0: all 12,665 images")
    ap.add_argument("--c0", default="10,20,30,40")
    ap.add_argument("--data-dir", default="")
    a = ap.parse_args()
    torch.set_num_threads(1)
    c0s = [float(c) for c in a.c0.split(",")]
    p = {"data_dir": a.data_dir}
    x, y = mnist01(p, "train", a.d, True, 0, a.n_train)
    xt, yt = mnist01(p, "test", a.d, True, 0, 0)
    cfg = dict(lr=0.1, batch_size=64, max_epochs=a.epochs, seed=1)

    def net() -> LazyTwoLayerNet:
        return LazyTwoLayerNet(a.d, a.m, seed=0)

    before, alone = 0.0, {}
    for c0 in c0s:
        model = net()
        t = time.process_time()
        res = train_lazy_sgd(model, x, y, LazyTrainConfig(c0=c0, **cfg), xt, yt)
        before += time.process_time() - t
        alone[c0] = (model, res)
    t = time.process_time()
    shared = train_lazy_sgd_c0s(net(), x, y, LazyTrainConfig(**cfg), c0s, xt, yt)
    after = time.process_time() - t
    print(f"MNIST 0 vs 1, ||x|| = 1, d = {a.d}, m = {a.m}, {x.shape[0]} training images, "
          f"at most {a.epochs} epochs, 1 thread")
    print(f"{'C0':>5s} {'steps':>6s} {'stop':>11s} {'test acc':>8s} {'identical':>9s}")
    same_all = True
    for c0 in c0s:
        m1, r1 = alone[c0]
        m2, r2 = shared[c0]
        same = torch.equal(m1[0].weight, m2[0].weight) and r1.steps == r2.steps
        same_all &= same
        print(f"{c0:5g} {r1.steps:6d} {r1.stop_reason:>11s} {r1.test_acc:8.4f} {str(same):>9s}")
    print(f"before (one run per C0): {before:.2f} CPU s; after (one run, snapshots): "
          f"{after:.2f} CPU s; ratio {before / after:.2f}x; identical models: {same_all}")


if __name__ == "__main__":
    main()
