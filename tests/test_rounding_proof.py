"""Flips next to the decision boundary are decided above the forward pass's rounding bound
(issue 15): inputs x' = x + frac * eta* grad f(x), with eta* the exact smallest step, are true
flips at a step (1 - frac) eta*; every one must be reported flipped, and every reported example
must flip when re-evaluated in float64 with the same weights."""

from __future__ import annotations

import os
import pickle

import pytest
import torch
from torch import nn

from randadv.attacks import smallest_flip_step
from randadv.attacks.verify import rounding_bound, verified_adversarial
from randadv.errors import StoreError
from randadv.nets import TwoLayerRandomNet
from randadv.train.store import load_tensors_only


def _f64(net: TwoLayerRandomNet, x: torch.Tensor) -> torch.Tensor:
    w, a = net.layers[0].weight.double(), net.out_weight.double()
    return net.activation(x.double() @ w.T) @ a


def _near_boundary(net: TwoLayerRandomNet, n: int, frac: float, seed: int) -> torch.Tensor:
    x = torch.randn(n, net.d, generator=torch.Generator().manual_seed(seed))
    r = smallest_flip_step(net, x)
    x = x[r.flipped]
    g = torch.func.vmap(torch.func.grad(lambda z: net(z[None])[0]))(x)
    return x + frac * r.eta[r.flipped][:, None] * g


class _UlpNoise(nn.Module):
    """Perturbs each output by a few ulps, differently per call (batch != single-row)."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net, self.calls = net, 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        f = self.net(x)
        gen = torch.Generator().manual_seed(self.calls)
        k = torch.randint(-4, 5, f.shape, generator=gen).to(f.dtype)
        return f + k * torch.finfo(f.dtype).eps * f.abs().clamp_min(1.0)


CASES = [(100, 1000, "relu"), (500, 100, "relu"), (50, 10000, "relu"), (100, 1000, "tanh")]


@pytest.mark.parametrize("d,k,act", CASES)
@pytest.mark.parametrize("frac", [0.999, 0.99999])
@pytest.mark.parametrize("threads", [1, 2])
def test_near_boundary_flips_are_found_and_hold_in_float64(d, k, act, frac, threads):
    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        net = TwoLayerRandomNet(d, k, activation=act, seed=3)
        xp = _near_boundary(net, 32 if k < 10000 else 12, frac, seed=1)
        for bs in (len(xp), 7, 1):
            for i in range(0, len(xp), bs):
                part = xp[i:i + bs]
                r = smallest_flip_step(net, part)
                assert bool(r.flipped.all()), f"true flips rejected at batch size {bs}"
                f_adv64 = _f64(net, r.x_adv)
                assert bool((torch.sign(f_adv64) == -torch.sign(r.f_x.double())).all())
                assert bool((r.f_adv.abs() > r.rounding_bound).all())
    finally:
        torch.set_num_threads(old)


def test_push_is_of_the_order_bound_over_gradient_norm_squared():
    net = TwoLayerRandomNet(100, 1000, seed=3)
    xp = _near_boundary(net, 32, 0.99999, seed=2)
    r = smallest_flip_step(net, xp)
    push = (r.eta - r.eta_boundary).abs()
    scale = r.rounding_bound / r.grad_norm ** 2
    # first push 2 B / |slope|, slope = |f| / t (secant); at most 4^7 times that
    assert bool((push <= 2 * 4 ** 7 * scale.clamp_min(1e-30) + 1e-6 * r.eta.abs()).all())
    assert float((push / scale).median()) < 64


def test_ulp_noise_keeps_true_flips_and_rejects_non_flips():
    net = TwoLayerRandomNet(100, 1000, seed=3)
    xp = _near_boundary(net, 32, 0.999, seed=4)
    noisy = _UlpNoise(net)
    r = smallest_flip_step(noisy, xp)
    assert bool(r.flipped.all())
    assert bool((torch.sign(_f64(net, r.x_adv)) == -torch.sign(r.f_x.double())).all())
    # a genuine non-flip: candidates on x's own side, within the rounding bound of the boundary
    x = torch.randn(16, 100, generator=torch.Generator().manual_seed(5))
    f = net(x)
    g = torch.func.vmap(torch.func.grad(lambda z: net(z[None])[0]))(x)
    b = rounding_bound(net, x)
    # step to where f is (about) 0.3 B on x's side: the linearisation along grad f
    cand = x - ((f.abs() - 0.3 * b) / g.norm(dim=1) ** 2 * torch.sign(f))[:, None] * g
    f_c = _f64(net, cand)
    same_side = torch.sign(f_c) == torch.sign(f.double())
    x_adv, ok, _, _ = verified_adversarial(noisy, x, cand, f)
    f_adv64 = _f64(net, x_adv)
    assert bool((torch.sign(f_adv64[ok]) == -torch.sign(f.double()[ok])).all())
    assert same_side.any()          # the construction gives near-boundary non-flips


def test_crafted_checkpoint_cannot_run_code(tmp_path):
    marker = tmp_path / "ran"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    path = tmp_path / "checkpoint.pt"
    with open(path, "wb") as fh:
        pickle.dump({"model": Evil()}, fh)
    with pytest.raises(StoreError, match="checkpoint.pt"):
        load_tensors_only(path)
    assert not marker.exists()
    torch.save({"model": {"w": torch.ones(2)}, "epoch": 3}, path)
    assert load_tensors_only(path)["epoch"] == 3


@pytest.mark.parametrize("norm", ["l2", "linf"])
def test_closest_adversarial_next_to_its_boundary_flips_in_float64(norm):
    import copy

    from randadv.attacks import closest_adversarial

    torch.manual_seed(7)
    net = nn.Sequential(nn.Linear(20, 200), nn.ReLU(), nn.Linear(200, 200), nn.ReLU(),
                        nn.Linear(200, 1)).requires_grad_(False)
    net64 = copy.deepcopy(net).double()
    x = torch.randn(24, 20, generator=torch.Generator().manual_seed(8))
    first = closest_adversarial(net, x, norm=norm)
    ok = first.success
    for frac in (0.999, 0.99999):
        xp = x[ok] + frac * (first.x_adv[ok] - x[ok])
        side = torch.sign(net64(xp.double()).reshape(-1))
        for bs in (len(xp), 7, 1):
            for i in range(0, len(xp), bs):
                r = closest_adversarial(net, xp[i:i + bs], norm=norm)
                assert bool(r.success.all()), f"a flip next to the boundary was missed ({bs})"
                f64 = net64(r.x_adv.double()).reshape(-1)
                assert bool((torch.sign(f64) == -torch.sign(r.f_x.double())).all())
                sure = side[i:i + bs] == torch.sign(r.f_x.double())
                assert bool((torch.sign(f64[sure]) != side[i:i + bs][sure]).all())


def test_pgd_counts_a_flip_only_above_the_rounding_bound():
    from randadv.attacks.pgd import verified_pgd

    class Affine(nn.Module):
        def forward(self, z: torch.Tensor) -> torch.Tensor:
            return z.sum(1) - 1.0

    model = Affine()
    x = torch.full((3, 4), 0.5)                               # f(x) = 1, label y = +1
    y = torch.ones(3)
    b = float(rounding_bound(model, torch.full((1, 4), 0.25))[0])
    # f(x_adv) = -b/4 (a sign change inside the bound), -4b, and +1e-3
    shifts = torch.tensor([-b / 4, -4 * b, 1e-3])
    x_adv = torch.full((3, 4), 0.25) + shifts[:, None] / 4
    r = verified_pgd(model, x, y, x_adv, radius=1.0, bounds=None)
    assert float(r.f_adv[0]) < 0                              # the sign did change ...
    assert r.success.tolist() == [False, True, False]         # ... but only row 1 is verified
    assert r.robust.tolist() == [True, False, True]
