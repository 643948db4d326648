"""The same model idioms on every path (issue 15, item 4): a ReLU nn.Sequential ending in
Linear(h, 1), the same followed by nn.Flatten(0), and LogitDifference over a two-logit
nn.Sequential all get the exact single-step search and exact distances."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from randadv import exact
from randadv.attacks import smallest_flip_step
from randadv.errors import InvalidInputError
from randadv.nets import LogitDifference, TwoLayerRandomNet

D, H = 6, 10


def _base(depth: int, seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    mods: list[nn.Module] = []
    width = D
    for _ in range(depth):
        mods += [nn.Linear(width, H), nn.ReLU()]
        width = H
    net = nn.Sequential(*mods, nn.Linear(width, 1))
    for m in net:
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, std=(2 / m.in_features) ** 0.5)   # He: f = O(1)
            nn.init.normal_(m.bias, std=0.1)
    return net.requires_grad_(False)


def _logit_pair(base: nn.Sequential) -> LogitDifference:
    """A two-logit net whose logit difference is the base net's output."""
    last = base[-1]
    two = nn.Linear(last.in_features, 2)
    with torch.no_grad():
        two.weight.copy_(torch.cat([0.3 * last.weight, 1.3 * last.weight]))
        two.bias.copy_(torch.cat([0.3 * last.bias, 1.3 * last.bias]))
    return LogitDifference(nn.Sequential(*list(base)[:-1], two).requires_grad_(False))


X = torch.randn(12, D, generator=torch.Generator().manual_seed(3))


@pytest.mark.parametrize("depth", [1, 3])
def test_flatten0_twin_gets_the_exact_search_with_the_same_eta(depth):
    base = _base(depth)
    r0 = smallest_flip_step(base, X)
    r1 = smallest_flip_step(nn.Sequential(*base, nn.Flatten(0)), X)
    assert r0.method == r1.method == ("kinks" if depth == 1 else "layers")
    assert r0.flipped.sum() >= 1
    torch.testing.assert_close(r1.eta_boundary, r0.eta_boundary, rtol=0, atol=0, equal_nan=True)
    assert torch.equal(r0.flipped, r1.flipped)


def test_logit_difference_gets_the_exact_search():
    base = _base(2)
    ld = _logit_pair(base)
    r0, r1 = smallest_flip_step(base, X), smallest_flip_step(ld, X)
    assert r1.method == "layers" and r0.flipped.sum() >= 1
    torch.testing.assert_close(r1.eta_boundary, r0.eta_boundary, rtol=1e-4, atol=1e-6,
                               equal_nan=True)


def test_method_names_the_search_that_ran():
    assert smallest_flip_step(TwoLayerRandomNet(D, 50, seed=1), X).method == "kinks"
    assert smallest_flip_step(TwoLayerRandomNet(D, 50, "tanh", seed=1), X).method == "newton"
    tanh = nn.Sequential(nn.Linear(D, H), nn.Tanh(), nn.Linear(H, 1))
    assert smallest_flip_step(tanh, X).method == "bracket"
    with pytest.raises(InvalidInputError, match="exact=True needs a piecewise-linear"):
        smallest_flip_step(tanh, X, exact=True)


@pytest.mark.parametrize("norm", ["l1", "linf"])
def test_exact_distance_reads_every_idiom(norm):
    base = _base(1)
    idioms = [nn.Sequential(*base, nn.Flatten(0)), _logit_pair(base)]
    ref = exact.min_distance(base, X[:2], norm=norm)
    for m in idioms:
        got = exact.min_distance(m, X[:2], norm=norm)
        for a, b in zip(ref, got, strict=True):
            assert a.status == b.status == "optimal" and b.verified
            assert abs(a.distance - b.distance) <= 1e-4 * a.distance
