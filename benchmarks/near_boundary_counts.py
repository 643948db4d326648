"""Near-boundary verification counts of smallest_flip_step (issue 15's protocol).

Inputs x' = x + frac * eta* grad f(x) (eta* the exact smallest flipping step, so x' is a true
flip at a step (1 - frac) eta*), evaluated at batch sizes 64, 7, 1 and torch threads 1, 2. Counts:
true flips reported not flipped ("rejected"), reported flips that do not hold in float64 with the
same weights ("artefacts"), and the push |eta - eta_boundary| in units of
rounding_bound / ||grad f||^2.

    python benchmarks/near_boundary_counts.py
"""

from __future__ import annotations

import torch

from randadv.attacks import smallest_flip_step
from randadv.nets import TwoLayerRandomNet

CASES = [(100, 1000, "relu"), (500, 100, "relu"), (50, 10000, "relu"), (100, 1000, "tanh")]


def f64(net: TwoLayerRandomNet, x: torch.Tensor) -> torch.Tensor:
    w, a = net.layers[0].weight.double(), net.out_weight.double()
    return net.activation(x.double() @ w.T) @ a


def main() -> None:
    total_true = total_rej = total_rep = total_art = 0
    pushes = []
    for d, k, act in CASES:
        for frac in (0.999, 0.99999):
            net = TwoLayerRandomNet(d, k, activation=act, seed=3)
            x = torch.randn(64, d, generator=torch.Generator().manual_seed(1))
            r = smallest_flip_step(net, x)
            x = x[r.flipped]
            g = torch.func.vmap(torch.func.grad(lambda z, net=net: net(z[None])[0]))(x)
            xp = x + frac * r.eta[r.flipped][:, None] * g
            for threads in (1, 2):
                torch.set_num_threads(threads)
                for bs in (64, 7, 1):
                    rej = rep = art = 0
                    for i in range(0, len(xp), bs):
                        res = smallest_flip_step(net, xp[i:i + bs])
                        rej += int((~res.flipped).sum())
                        fl = res.flipped
                        rep += int(fl.sum())
                        if fl.any():
                            f_adv = f64(net, res.x_adv[fl])
                            f_x = f64(net, xp[i:i + bs][fl])
                            art += int((torch.sign(f_adv) == torch.sign(f_x)).sum())
                            # the push in units of bound / ||grad f||^2 (issue 15's scale)
                            push = (res.eta[fl] - res.eta_boundary[fl]).abs().double()
                            unit = (res.rounding_bound[fl].double()
                                    / res.grad_norm[fl].double() ** 2)
                            pushes.append(push / unit)
                    total_true += len(xp)
                    total_rej += rej
                    total_rep += rep
                    total_art += art
                    print(f"{act} d={d} k={k} frac={frac} threads={threads} batch={bs}: "
                          f"{len(xp)} true flips, rejected {rej}, reported {rep}, "
                          f"float64 artefacts {art}")
    p = torch.cat(pushes)
    print(f"total: {total_true} true flips, rejected {total_rej}; {total_rep} reported, "
          f"{total_art} do not hold in float64")
    print(f"push |eta - eta_boundary| / (rounding_bound / ||grad f||^2): median {p.median():.3g}, "
          f"90% {p.quantile(0.9):.3g}, max {p.max():.3g}")


if __name__ == "__main__":
    main()
