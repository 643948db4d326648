"""Speed of the smallest-flip-step pipeline against a plain baseline and the hardware floor.

Times, in one run, on the same machine:
  pipeline  randadv: TwoLayerRandomNet(d, k) construction + smallest_flip_step on B inputs
            (exact kink sweep, verified by a forward pass);
  baseline  the way a researcher would write it: materialised weights, autograd gradient, then
            a uniform grid of 2000 eta values in (0, 20] evaluated batch-wise (precision 0.01);
  floor     drawing the k*d normals + three (k x d) @ (d x B) matrix products (forward,
            backward, directional derivatives): no algorithm for the task does less work.
and prints the ratios, plus the agreement of the two methods' steps.

With ``--streamed`` the network's weights are streamed block by block (as k = 10^6 runs them:
never held whole), and the run also times the pipeline as it was before its two cuts for wide
nets: z = W x and grad f = W^T (a * psi'(z)) in two passes over W instead of one
(:meth:`GaussianMatrix.mm_rmm`: W drawn once more per call), and the kink sweep over all rows
at once instead of in row chunks of about ``KINK_SWEEP_CHUNK`` kinks; the floor is then two
draws of the k*d normals (one for z and grad f, one for W grad f) and the three products.

    python benchmarks/bench_single_step.py [--d 1000] [--k 10000] [--inputs 100] [--repeats 5]
    python benchmarks/bench_single_step.py --streamed --k 100000 --repeats 3 --threads 1
"""

from __future__ import annotations

import argparse
import math
import statistics
import time

import torch

import randadv.attacks.piecewise_linear as piecewise_linear
from randadv.attacks import smallest_flip_step
from randadv.nets import GaussianMatrix, TwoLayerRandomNet, sphere_points

STREAM = dict(max_weight_bytes=0)     # every layer streamed
_FUSED = GaussianMatrix.mm_rmm


def _split_mm_rmm(self, x, back):
    """The pass before the fusion: z = x W^T, then u W with u = back(block) on z's blocks."""
    z = self.mm(x)
    u = torch.cat([back(s, z[..., s:s + self.block_rows])
                   for s in range(0, self.rows, self.block_rows)], dim=-1)
    return z, self.rmm(u)


def pipeline(d: int, k: int, x: torch.Tensor, seed: int, streamed: bool = False):
    net = TwoLayerRandomNet(d, k, seed=seed, **(STREAM if streamed else {}))
    return smallest_flip_step(net, x, max_eta=20.0)


def pipeline_split(d: int, k: int, x: torch.Tensor, seed: int):
    """The streamed pipeline as it was before its two cuts: z and grad f in two passes over W,
    and the kink sweep over all rows at once (not in row chunks)."""
    GaussianMatrix.mm_rmm = _split_mm_rmm
    chunk, piecewise_linear.KINK_SWEEP_CHUNK = piecewise_linear.KINK_SWEEP_CHUNK, 1 << 62
    try:
        return pipeline(d, k, x, seed, streamed=True)
    finally:
        GaussianMatrix.mm_rmm = _FUSED
        piecewise_linear.KINK_SWEEP_CHUNK = chunk


def floor(d: int, k: int, x: torch.Tensor, seed: int, streamed: bool = False) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(k, d, generator=g)
    if streamed:
        w = torch.randn(k, d, generator=g)     # a streamed W is drawn again for W grad f
    xt = x.T.contiguous()
    z = w @ xt                     # forward pre-activations   (k x B)
    grad = w.T @ z                 # backward                  (d x B)
    return w @ grad                # directional derivatives   (k x B)


def baseline(d: int, k: int, x: torch.Tensor, seed: int, n_eta: int = 2000,
             chunk: int = 20, early_exit: bool = False):
    """Autograd gradient, then the first flipping eta on a uniform grid of n_eta values
    (the whole grid, as a grid search does; ``early_exit`` stops once every input flipped)."""
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(k, d, generator=g) / math.sqrt(d)
    a = (2 * torch.randint(0, 2, (k,), generator=g) - 1).float() / math.sqrt(k)

    def f(inp):
        return torch.relu(inp @ w.T) @ a

    xx = x.clone().requires_grad_(True)
    fx = f(xx)
    (grad,) = torch.autograd.grad(fx.sum(), xx)
    fx, grad = fx.detach(), grad.detach()
    s = -torch.sign(fx)
    etas = torch.linspace(0, 20, n_eta + 1)[1:]
    found = torch.full((x.shape[0],), float("nan"))
    with torch.no_grad():
        for start in range(0, n_eta, chunk):
            e = etas[start:start + chunk]
            pts = x[:, None, :] + (s[:, None, None] * e[None, :, None]) * grad[:, None, :]
            vals = f(pts.reshape(-1, d)).reshape(x.shape[0], -1)
            flip = torch.sign(vals) != torch.sign(fx)[:, None]
            first = torch.where(flip.any(1), e[flip.float().argmax(1)], torch.nan)
            found = torch.where(torch.isnan(found), first, found)
            if early_exit and not torch.isnan(found).any():
                break
    return s * found, w, a


def same_net_exact(w: torch.Tensor, a: torch.Tensor, x: torch.Tensor):
    """randadv's exact search on the baseline's own weights (an nn.Sequential ReLU MLP)."""
    k, d = w.shape
    model = torch.nn.Sequential(torch.nn.Linear(d, k, bias=False), torch.nn.ReLU(),
                                torch.nn.Linear(k, 1, bias=False))
    with torch.no_grad():
        model[0].weight.copy_(w)
        model[2].weight.copy_(a[None])
    return smallest_flip_step(model, x, max_eta=20.0)


def timed(fn, *args):
    t0 = time.perf_counter()
    out = fn(*args)
    return time.perf_counter() - t0, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--d", type=int, default=1000)
    ap.add_argument("--k", type=int, default=10_000)
    ap.add_argument("--inputs", type=int, default=100)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--baseline-repeats", type=int, default=1)
    ap.add_argument("--baseline-early-exit", action="store_true",
                    help="stop the baseline's grid once every input has flipped")
    ap.add_argument("--streamed", action="store_true",
                    help="stream the weights block by block (as k = 10^6 does) and time the "
                         "pipeline before the fused z / grad f pass too")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    d, k = a.d, a.k
    x = sphere_points(a.inputs, d, math.sqrt(d), 0)
    print(f"d={d} k={k} inputs={a.inputs} threads={torch.get_num_threads()} "
          f"torch={torch.__version__}" + (" weights streamed" if a.streamed else ""))
    pipeline(d, k, x, 99, a.streamed)
    floor(d, k, x, 99, a.streamed)      # warm-up
    t_pipe, t_floor, t_split = [], [], []
    for r in range(a.repeats):   # interleaved, so all see the same machine load
        t, res = timed(pipeline, d, k, x, r, a.streamed)
        t_pipe.append(t)
        t_floor.append(timed(floor, d, k, x, r, a.streamed)[0])
        if a.streamed:
            t, before = timed(pipeline_split, d, k, x, r)
            t_split.append(t)
            same = all(torch.equal(u, v) for u, v in
                       ((res.eta.nan_to_num(), before.eta.nan_to_num()),
                        (res.f_x, before.f_x), (res.x_adv, before.x_adv)))
            if not same:
                raise SystemExit("the fused and the split pass gave different results")
    if a.streamed:
        ms, mp = statistics.median(t_split), statistics.median(t_pipe)
        print(f"before    median {ms * 1e3:8.1f} ms  (runs: "
              + ", ".join(f"{t * 1e3:.0f}" for t in t_split)
              + "; z and grad f in two passes, one sweep)")
        print(f"before / after (fused pass, chunked sweep): {ms / mp:.2f}x; results bit-identical")
        print(f"after     median {mp * 1e3:8.1f} ms;  floor median "
              f"{statistics.median(t_floor) * 1e3:8.1f} ms;  after / floor "
              f"{mp / statistics.median(t_floor):.2f}x  (the baseline's grid is skipped: "
              "at streamed sizes it takes hours)")
        return
    t_base = []
    for _ in range(a.baseline_repeats):
        t, (eta_b, w, av) = timed(baseline, d, k, x, 0, 2000, 20, a.baseline_early_exit)
        t_base.append(t)
    ours = same_net_exact(w, av, x)
    both = ours.flipped & ~torch.isnan(eta_b)
    gap = (eta_b.abs() - ours.eta_boundary.abs())[both]
    mp, mf, mb = (statistics.median(t) for t in (t_pipe, t_floor, t_base))
    print(f"pipeline  median {mp * 1e3:8.1f} ms  (runs: "
          + ", ".join(f"{t * 1e3:.0f}" for t in t_pipe) + ")")
    print(f"floor     median {mf * 1e3:8.1f} ms  (runs: "
          + ", ".join(f"{t * 1e3:.0f}" for t in t_floor) + ")")
    print(f"baseline  median {mb * 1e3:8.1f} ms  (runs: "
          + ", ".join(f"{t * 1e3:.0f}" for t in t_base) + ")")
    print(f"speed-up over baseline: {mb / mp:.1f}x   (target >= 30x)")
    print(f"pipeline / floor:       {mp / mf:.2f}x   (target <= 1.5x)")
    print(f"same network, flipped: randadv {int(ours.flipped.sum())}/{a.inputs}, baseline "
          f"{int((~torch.isnan(eta_b)).sum())}/{a.inputs}; baseline grid eta - exact eta: "
          f"min {float(gap.min()):.2e}, max {float(gap.max()):.2e} (grid step "
          f"{20 / 2000:.2e})")


if __name__ == "__main__":
    main()
