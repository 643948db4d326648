"""Benchmark: the law-exact two-layer sampler against materialised nets (issue 20, item 4).

Cost per (network, input) pair of the single-step measurement (f(x), ||grad f||, the smallest
flipping eta, verified) at d = 1000, k = 1e4 (ReLU):

* sampler: ``sample_two_layer_ray`` + ``smallest_flip_step_on_ray`` on ``--pairs`` pairs, each an
  independent network (O(k) per pair);
* materialised, one input per net (the same i.i.d. design as the sampler):
  ``TwoLayerRandomNet(d, k)`` built (k d Gaussian draws) + ``smallest_flip_step`` on one input;
* materialised, ``--inputs`` inputs per net (the experiments' design, the weights' cost shared
  by the inputs; these pairs are not independent).

Both sides run in this process, one after the other, with 1 torch thread; times are process CPU
seconds (``time.process_time``), the smallest of ``--repeats``, so other load on the machine
inflates them little. The ratios printed are measured in this run. Then the largest width k
(doubling from 1e4, ReLU, d = 1000) for which one sampled pair takes at most ``--budget`` CPU
seconds (default 60), up to ``--max-k`` (default 4.5e7: one pair holds about 120 bytes per unit at
its peak, 5 GB at k = 4e7, the most this shared 23 GB machine can spare).

Run: ``python benchmarks/bench_law_sampler.py [--d 1000] [--k 10000] [--pairs 50] [--nets 5]
[--inputs 100] [--repeats 3] [--budget 60] [--max-k 45000000]``.
"""

from __future__ import annotations

import argparse
import math
import time

import torch

from randadv.attacks import smallest_flip_step, smallest_flip_step_on_ray
from randadv.nets import TwoLayerRandomNet, sphere_points
from randadv.theory.two_layer_law import sample_two_layer_ray


def _best(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.process_time()
        fn()
        times.append(time.process_time() - t0)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--d", type=int, default=1000)
    ap.add_argument("--k", type=int, default=10_000)
    ap.add_argument("--pairs", type=int, default=50)
    ap.add_argument("--nets", type=int, default=5)
    ap.add_argument("--inputs", type=int, default=100)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--budget", type=float, default=60.0)
    ap.add_argument("--max-k", type=int, default=45_000_000)
    args = ap.parse_args()
    torch.set_num_threads(1)
    d, k = args.d, args.k

    def sampler():
        r = smallest_flip_step_on_ray(sample_two_layer_ray(d, k, "relu", pairs=args.pairs,
                                                           seed=0))
        assert bool(r.flipped.all())

    def one_input_per_net():
        for n in range(args.nets):
            net = TwoLayerRandomNet(d, k, "relu", seed=n)
            smallest_flip_step(net, sphere_points(1, d, math.sqrt(d), "bench", n))

    def many_inputs_per_net():
        net = TwoLayerRandomNet(d, k, "relu", seed=0)
        smallest_flip_step(net, sphere_points(args.inputs, d, math.sqrt(d), "bench"))

    t_s = _best(sampler, args.repeats) / args.pairs
    t_1 = _best(one_input_per_net, args.repeats) / args.nets
    t_m = _best(many_inputs_per_net, args.repeats) / args.inputs
    print(f"d = {d}, k = {k}, ReLU, CPU seconds per pair (best of {args.repeats}, 1 thread)")
    print(f"  sampler (exact law, {args.pairs} pairs):            {t_s * 1e3:9.3f} ms")
    print(f"  materialised, 1 input per net ({args.nets} nets):     {t_1 * 1e3:9.3f} ms"
          f"   ratio {t_1 / t_s:8.1f}x")
    print(f"  materialised, {args.inputs} inputs on one net:        {t_m * 1e3:9.3f} ms"
          f"   ratio {t_m / t_s:8.1f}x")
    print(f"largest k with one sampled pair (d = {d}, ReLU) within {args.budget:g} CPU s:")
    kk, best = 10_000, None
    while kk <= args.max_k:
        t0 = time.process_time()
        try:
            r = smallest_flip_step_on_ray(sample_two_layer_ray(d, kk, "relu", pairs=1, seed=1))
        except RuntimeError as err:          # out of memory
            print(f"  k = {kk:.3g}: {err}")
            break
        t = time.process_time() - t0
        print(f"  k = {kk:.3g}: {t:7.2f} s  flipped={bool(r.flipped[0])}  "
              f"eta={float(r.eta[0]):+.4f}")
        if t > args.budget:
            break
        best = kk
        kk *= 2
    print(f"  largest k within {args.budget:g} s: {best:.3g}" if best else "  none")


if __name__ == "__main__":
    main()
