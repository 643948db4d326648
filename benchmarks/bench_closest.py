"""Benchmark: randadv.attacks.closest_adversarial against the minimum-norm attacks of foolbox 3
(FMN, DDN, EAD) and torchattacks (FAB, DeepFool) on the same random networks and inputs.

The binary model phi is wrapped as two logits (0, phi) for the libraries (class 1 iff phi > 0),
and each library attack is run as its documentation shows (foolbox: ``PyTorchModel`` with
``bounds=(0, 1)``, ``attack(fmodel, x, labels, epsilons=None)``; torchattacks: ``atk(x,
labels)``) with its default settings, except EAD with ``steps=1000`` instead of 10000 (10x
shorter, for a 2-core machine; noted in the output). Only points that flip sign phi by our own
forward pass count; a failed attack counts as distance inf in the median.

Run: ``python benchmarks/bench_closest.py [--arch fc] [--size 12] [--nets 2] [--points 8]``
(needs ``pip install foolbox==3.3.4`` and ``pip install --no-deps torchattacks``).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from torch import nn

from randadv.attacks.closest import closest_adversarial
from randadv.attacks.lp_geometry import lp_norm
from randadv.nets.zoo import build_architecture


class TwoLogits(nn.Module):
    """(0, phi(x)): argmax is 1 iff phi(x) > 0."""

    def __init__(self, phi: nn.Module) -> None:
        super().__init__()
        self.phi = phi

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.phi(x).reshape(-1, 1)
        return torch.cat([torch.zeros_like(f), f], dim=1)


def library_attacks(norm: str):
    import foolbox as fb
    import torchattacks as ta

    def foolbox_run(attack):
        def run(model, x, labels):
            fmodel = fb.PyTorchModel(TwoLogits(model).eval(), bounds=(0, 1))
            _, clipped, _ = attack(fmodel, x, labels, epsilons=None)
            return clipped
        return run

    def ta_run(make):
        def run(model, x, labels):
            return make(TwoLogits(model).eval())(x, labels)
        return run

    out = {}
    if norm == "l2":
        out["foolbox FMN-L2"] = foolbox_run(fb.attacks.L2FMNAttack())
        out["foolbox DDN"] = foolbox_run(fb.attacks.DDNAttack())
        out["torchattacks FAB-L2"] = ta_run(lambda m: ta.FAB(m, norm="L2", n_classes=2))
        out["torchattacks DeepFool"] = ta_run(lambda m: ta.DeepFool(m))
    elif norm == "l1":
        out["foolbox FMN-L1"] = foolbox_run(fb.attacks.L1FMNAttack())
        out["foolbox EAD (steps=1000)"] = foolbox_run(fb.attacks.EADAttack(steps=1000))
        out["torchattacks FAB-L1"] = ta_run(lambda m: ta.FAB(m, norm="L1", n_classes=2))
    else:
        out["foolbox FMN-Linf"] = foolbox_run(fb.attacks.LInfFMNAttack())
        out["torchattacks FAB-Linf"] = ta_run(lambda m: ta.FAB(m, norm="Linf", n_classes=2))
    return out


def measure(model, x, x_adv, norm):
    with torch.no_grad():
        f0, f1 = model(x), model(x_adv)
    ok = (torch.sign(f0) * torch.sign(f1) < 0) & (x_adv >= 0).flatten(1).all(1) \
        & (x_adv <= 1).flatten(1).all(1)
    d = lp_norm(x_adv - x, norm)
    return torch.where(ok, d, torch.full_like(d, float("inf")))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--arch", default="fc")
    ap.add_argument("--size", type=int, default=12)
    ap.add_argument("--nets", type=int, default=2)
    ap.add_argument("--points", type=int, default=8)
    ap.add_argument("--norms", default="l2,linf,l1")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    nets = [build_architecture(args.arch, args.size, seed=s) for s in range(args.nets)]
    xs = [net.sample_inputs(args.points, "bench", s) for s, net in enumerate(nets)]
    print(f"{args.arch}, {args.size}x{args.size}x3 (n={3 * args.size ** 2}), "
          f"{args.nets} nets x {args.points} points, bounds [0, 1], "
          f"{torch.get_num_threads()} thread(s)")
    for norm in args.norms.split(","):
        rows = {}
        runs = {"randadv closest_adversarial": lambda m, x, y, norm=norm:
                closest_adversarial(m, x, norm, bounds=(0.0, 1.0)).x_adv}
        runs.update(library_attacks(norm))
        for name, run in runs.items():
            dists, t = [], 0.0
            for net, x in zip(nets, xs, strict=True):
                with torch.no_grad():
                    labels = (net(x) > 0).long()
                t0 = time.perf_counter()
                try:
                    x_adv = run(net, x, labels)
                except Exception as e:  # noqa: BLE001 - a library's crash counts as failure
                    print(f"    {name} raised {type(e).__name__}: {e}")
                    x_adv = x.clone()
                t += time.perf_counter() - t0
                dists.append(measure(net, x, x_adv.detach(), norm))
            d = torch.cat(dists).double().numpy()
            rows[name] = (float(np.median(d)), float(np.isfinite(d).mean()), t)
        ours = rows["randadv closest_adversarial"]
        others = {k: v for k, v in rows.items() if not k.startswith("randadv")}
        best_name = min(others, key=lambda k: others[k][0])
        print(f"\n{norm}: {'attack':32s} {'median dist':>12s} {'success':>8s} {'time s':>8s} "
              f"{'dist ratio':>10s} {'speedup':>8s}")
        for name, (med, succ, t) in rows.items():
            print(f"    {name:32s} {med:12.5g} {succ:8.0%} {t:8.2f} {med / ours[0]:10.3f} "
                  f"{t / ours[2]:8.2f}")
        print(f"    ours / best of theirs ({best_name}): distance ratio "
              f"{ours[0] / others[best_name][0]:.4f}, speedup {others[best_name][2] / ours[2]:.2f}"
              f"x; fastest of theirs {min(v[2] for v in others.values()):.2f}s vs ours "
              f"{ours[2]:.2f}s")


if __name__ == "__main__":
    main()
