"""The random image networks of De Palma et al. (``randadv.nets.zoo``) as affine ReLU layers:
the converted network must reproduce the module's forward pass, and the exact distance (MILP) on
tiny zoo nets is never above a verified attack's distance."""

import numpy as np
import pytest
import torch

from randadv.attacks import closest_adversarial
from randadv.errors import InvalidInputError
from randadv.exact import AffineNet, min_distance, to_affine_layers
from randadv.nets.zoo import build_architecture

CASES = [
    ("fc", dict(hidden=(8, 6))),
    ("fc", dict(hidden=(5,), sigma_b2=0.2, bias=True)),
    ("conv4", dict(width=3, depth=2)),
    ("conv4", dict(width=2, depth=3, padding="periodic", sigma_b2=0.1)),
    ("lenet", dict(width=2, dense=(5, 4))),
    ("lenet", dict(width=2, dense=(3,), pool="sum", padding="periodic", sigma_b2=0.1)),
    ("resnet", dict(widths=(2, 3), blocks_per_stage=1, sigma_b2=0.1)),
    ("resnet", dict(widths=(2, 2), blocks_per_stage=2, padding="periodic")),
]


@pytest.mark.parametrize("size", [4, 5, 8])
@pytest.mark.parametrize("name,kw", CASES)
def test_affine_layers_reproduce_forward(name, kw, size):
    m = build_architecture(name, size, seed=2, dtype=torch.float64, **kw)
    net = AffineNet(to_affine_layers(m))
    assert net.d == m.n
    g = torch.Generator().manual_seed(size)
    # beyond [0, 1] too, so that negative inputs reach the first layer
    x = 3.0 * torch.rand(16, *m.input_shape, generator=g, dtype=torch.float64) - 1.0
    want = m(x).numpy()
    got = net.forward(x.reshape(16, -1).numpy())
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-10)
    # some ReLUs of each hidden layer switch between the samples (a real test of the pattern)
    zs = net.preactivations(x.reshape(16, -1).numpy())[:-1]
    pats = [z > 0 for z in zs]
    assert any(p.any(0).sum() > p.all(0).sum() for p in pats)


def test_float32_net_converts_to_its_float64_values():
    m32 = build_architecture("lenet", 6, seed=1, width=2, dense=(4,))
    m64 = build_architecture("lenet", 6, seed=1, width=2, dense=(4,), dtype=torch.float64)
    net = AffineNet(to_affine_layers(m32, input_shape=m32.input_shape))
    x = torch.rand(5, m64.n, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    np.testing.assert_allclose(net.forward(x.numpy()), m64(x).numpy(), rtol=0, atol=1e-10)


def test_unsupported_zoo_nets_raise_clear_errors():
    with pytest.raises(InvalidInputError, match="tanh"):
        to_affine_layers(build_architecture("fc", 4, activation="tanh", hidden=(3,)))
    with pytest.raises(InvalidInputError, match="num_outputs=2"):
        to_affine_layers(build_architecture("conv4", 4, width=2, depth=1, num_outputs=2))
    with pytest.raises(InvalidInputError, match="input_shape"):
        to_affine_layers(build_architecture("fc", 4, hidden=(3,)), input_shape=(3, 5, 5))


@pytest.mark.parametrize("name,kw,norms", [
    ("fc", dict(hidden=(8, 6)), ("linf", "l1")),
    ("conv4", dict(width=2, depth=2), ("linf",)),
])
def test_exact_distance_not_above_verified_attack(name, kw, norms):
    # time limits here are hang guards: the solves take seconds alone, and a limit of 20 s was
    # reached on the 2-core machine under a load of three CPU-bound jobs
    m = build_architecture(name, 4, seed=3, dtype=torch.float64, **kw)
    x = m.sample_inputs(2, "probe")
    f_x = m(x)
    compared = 0
    for norm in norms:
        p = {"l1": 1, "linf": np.inf}[norm]
        exact = min_distance(m, x, norm, bounds=(0, 1), time_limit=300,
                             input_shape=m.input_shape)
        attack = closest_adversarial(m, x, norm, bounds=(0, 1), seed=0)
        for i, r in enumerate(exact):
            assert r.status == "optimal" and r.verified
            assert r.lower_bound <= r.distance * (1 + 1e-6) + 1e-12
            # the witness, re-checked by a forward pass of the module: in the box, across the
            # boundary, at the reported distance
            xa = r.x_adv.reshape(1, *m.input_shape)
            assert float(xa.min()) >= 0.0 and float(xa.max()) <= 1.0
            assert float(m(xa)[0]) * float(f_x[i]) <= 0.0
            dist = torch.linalg.vector_norm((xa[0] - x[i]).flatten(), ord=p).item()
            assert dist == pytest.approx(r.distance, rel=1e-9, abs=1e-12)
            # the attack's point is verified too; the exact optimum is never above it
            a_dist = float(attack.distance[i])
            if np.isfinite(a_dist):
                xa2 = attack.x_adv[i:i + 1]
                assert float(m(xa2)[0]) * float(f_x[i]) <= 0.0
                compared += 1
            assert r.distance <= a_dist * (1 + 1e-6)
    assert compared > 0


def test_image_batch_gives_the_input_shape():
    """A batch (B, C, H, W) needs no ``input_shape``: the same distances as with it, and
    witnesses of the images' shape."""
    m = build_architecture("conv4", 4, seed=3, dtype=torch.float64, width=2, depth=2)
    x = m.sample_inputs(2, "probe")
    assert x.dim() == 4
    given = min_distance(m, x, "linf", bounds=(0, 1), time_limit=300, input_shape=m.input_shape)
    inferred = min_distance(m, x, "linf", bounds=(0, 1), time_limit=300)
    for a, b in zip(given, inferred, strict=True):
        assert b.distance == pytest.approx(a.distance, rel=1e-9)
        assert b.x_adv.shape == x.shape[1:]
