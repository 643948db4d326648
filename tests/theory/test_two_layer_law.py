"""The law-exact two-layer sampler (``randadv.theory.two_layer_law``) against materialised nets.

Protocol: the sampler's pairs are i.i.d. by construction; on the materialised side N independent
``TwoLayerRandomNet`` (float64, seeds disjoint from nothing the sampler uses) with ONE input each
(uniform on sqrt(d) S^{d-1}), so both samples are i.i.d. and two-sample tests apply as they are.
Each distribution check is a two-sample Kolmogorov-Smirnov test at alpha = 1e-3 (of |eta| over
flipped rows, ||grad f||, f(x)); the fraction flipped is compared by Fisher's exact test at
alpha = 1e-3. Moment checks against ``single_step_prediction`` (exact at every d, k for
||x|| = sqrt(d)) pass when the sample mean is within 4 standard errors (two-sided level 6e-5).
Seeds are fixed, so each run is the same draw; the levels say how rarely a correct sampler would
fail such a draw. ``test_validation_rejects_a_wrong_law`` shows the same battery failing on a
plausible wrong construction (the fresh Gaussian xi of step 3 left out): at d = 5, k = 200 its
fraction flipped differs from the nets' with Fisher p ~ 1e-33.
"""

import math

import numpy as np
import pytest
import torch
from scipy import stats

from randadv.attacks import smallest_flip_step, smallest_flip_step_on_ray
from randadv.errors import InvalidInputError
from randadv.nets import TwoLayerRandomNet, sphere_points
from randadv.theory.gaussian import single_step_prediction
from randadv.theory.two_layer_law import (
    GEN_BLOCK,
    TwoLayerRay,
    fourth_moments,
    sample_two_layer_ray,
)

ALPHA = 1e-3
N_SAMPLER, N_NETS = 1500, 400


def _materialised(d: int, k: int, act: str, n: int) -> dict[str, np.ndarray]:
    eta, grad, flipped, f = [], [], [], []
    for i in range(n):
        net = TwoLayerRandomNet(d, k, act, seed=10_000 + i, dtype=torch.float64)
        x = sphere_points(1, d, math.sqrt(d), "law-test-x", i, dtype=torch.float64)
        r = smallest_flip_step(net, x)
        eta.append(float(r.eta.abs()[0]))
        grad.append(float(r.grad_norm[0]))
        flipped.append(bool(r.flipped[0]))
        f.append(float(r.f_x[0]))
    return dict(eta=np.array(eta), grad=np.array(grad), flipped=np.array(flipped), f=np.array(f))


def _sampled(ray: TwoLayerRay) -> dict[str, np.ndarray]:
    r = smallest_flip_step_on_ray(ray)
    return dict(eta=r.eta.abs().numpy(), grad=r.grad_norm.numpy(), flipped=r.flipped.numpy(),
                f=r.f_x.numpy())


def _compare(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> dict[str, float]:
    ea, eb = a["eta"][a["flipped"]], b["eta"][b["flipped"]]
    table = [[int(a["flipped"].sum()), int((~a["flipped"]).sum())],
             [int(b["flipped"].sum()), int((~b["flipped"]).sum())]]
    return dict(eta=stats.ks_2samp(ea, eb).pvalue, grad=stats.ks_2samp(a["grad"], b["grad"]).pvalue,
                f=stats.ks_2samp(a["f"], b["f"]).pvalue,
                flipped=stats.fisher_exact(table).pvalue)


@pytest.mark.parametrize("act,d,k", [("relu", 20, 50), ("tanh", 20, 50), ("softplus", 20, 50),
                                     ("relu", 100, 1000), ("tanh", 10, 300), ("relu", 5, 200)])
def test_sampler_matches_materialised_nets(act, d, k):
    torch.set_num_threads(1)
    sampled = _sampled(sample_two_layer_ray(d, k, act, pairs=N_SAMPLER, seed=1))
    p = _compare(sampled, _materialised(d, k, act, N_NETS))
    assert min(p.values()) > ALPHA, p


def test_validation_rejects_a_wrong_law():
    """Power: c without the fresh Gaussian term (c = ((u.v) u + chi v) / d) at d = 5, k = 200
    (k >> d, where that term dominates c) fails the comparison with the materialised nets (the
    fraction flipped; f and ||grad f|| do not depend on c and still agree)."""
    torch.set_num_threads(1)
    d, k = 5, 200
    ray = sample_two_layer_ray(d, k, "relu", pairs=N_SAMPLER, seed=1)
    u = ray.z                                       # s = 1 at ||x|| = sqrt(d)
    v = ray.a * ray.activation.derivative(ray.z)
    uv, vv = (u * v).sum(1), (v * v).sum(1)
    chi = (d * ray.grad_norm**2 - uv**2) / vv
    wrong = TwoLayerRay(d=d, k=k, x_norm=ray.x_norm, activation=ray.activation, z=ray.z,
                        c=(uv[:, None] * u + chi[:, None] * v) / d, a=ray.a, f_x=ray.f_x,
                        grad_norm=ray.grad_norm, pairs=ray.pairs)
    p = _compare(_sampled(wrong), _materialised(d, k, "relu", N_NETS))
    assert p["flipped"] < ALPHA, p
    assert p["f"] > ALPHA and p["grad"] > ALPHA, p


@pytest.mark.slow
@pytest.mark.parametrize("act", ["relu", "tanh"])
def test_sampler_matches_materialised_nets_wide(act):
    torch.set_num_threads(1)
    d, k = 1000, 10_000
    sampled = _sampled(sample_two_layer_ray(d, k, act, pairs=1000, seed=2))
    p = _compare(sampled, _materialised(d, k, act, 300))
    assert min(p.values()) > ALPHA, p


@pytest.mark.parametrize("act,d,k,output", [("relu", 3, 10, "rademacher"),
                                            ("tanh", 3, 10, "gaussian"),
                                            ("softplus", 7, 20, "rademacher"),
                                            ("relu", 10**6, 2000, "rademacher")])
def test_moments_match_single_step_prediction(act, d, k, output):
    """E f(x)^2 = E psi(X)^2 and E||grad f||^2 = ((d-1) E psi'^2 + E X^2 psi'^2) / d exactly at
    every d, k (||x|| = sqrt(d)), and the fourth moments of ``fourth_moments``; the pairs are
    i.i.d., SE = std / sqrt(n)."""
    n = 5000 if k <= 20 else 1000
    ray = sample_two_layer_ray(d, k, act, pairs=n, seed=5, output=output)
    th = single_step_prediction(act, 1, d)
    m = fourth_moments(act, d, k, output)
    assert m.f_sq == pytest.approx(th.f_var, rel=1e-9)
    assert m.grad_sq == pytest.approx(th.grad_norm_sq, rel=1e-9)
    for sample, mean in ((ray.f_x**2, th.f_var), (ray.grad_norm**2, th.grad_norm_sq),
                         (ray.f_x**4, m.f_4), (ray.grad_norm**4, m.grad_4)):
        s = sample.numpy()
        se = s.std(ddof=1) / math.sqrt(n)
        assert abs(s.mean() - mean) <= 4 * se, (s.mean(), mean, se)


def test_ray_slope_is_grad_norm_sq_and_values_agree():
    """Step 3's check c . v = ||g||^2 (the ray's slope at eta = 0 is ||grad f||^2), and
    f(x + 0 g) = f(x) from the k numbers."""
    ray = sample_two_layer_ray(50, 300, "gelu", pairs=20, seed=0)
    v = ray.a * ray.activation.derivative(ray.z)
    torch.testing.assert_close((ray.c * v).sum(1), ray.grad_norm**2, rtol=1e-12, atol=0)
    torch.testing.assert_close(ray.values(torch.zeros(20, dtype=torch.float64)), ray.f_x,
                               rtol=1e-12, atol=1e-15)


def test_draws_do_not_depend_on_chunking_or_batch():
    k = GEN_BLOCK + 17                              # two generator blocks
    whole = sample_two_layer_ray(30, k, "relu", pairs=4, seed=3)
    tail = sample_two_layer_ray(30, k, "relu", pairs=2, seed=3, first_pair=2)
    for name in ("z", "c", "a", "f_x", "grad_norm"):
        assert torch.equal(getattr(whole, name)[2:], getattr(tail, name)), name
    again = sample_two_layer_ray(30, k, "relu", pairs=4, seed=3, device="cpu")
    assert torch.equal(whole.c, again.c)
    other = sample_two_layer_ray(30, k, "relu", pairs=4, seed=4)
    assert not torch.equal(whole.z, other.z)


def test_step_on_ray_is_verified_and_signed():
    ray = sample_two_layer_ray(10**5, 5000, "relu", pairs=16, seed=7)
    r = smallest_flip_step_on_ray(ray)
    assert bool(r.flipped.all()) and r.method == "kinks"
    f_adv = ray.values(r.eta)
    assert torch.equal(f_adv, r.f_adv)
    assert bool((torch.sign(f_adv) != torch.sign(ray.f_x)).all())
    assert bool((f_adv.abs() > r.rounding_bound).all())
    assert bool((torch.sign(r.eta) == -torch.sign(ray.f_x)).all())
    # the boundary step is a root of the ray: |f| there within the rounding bound's scale
    at = ray.values(r.eta_boundary)
    assert bool((at.abs() <= 1e-9 * ray.f_x.abs()).all())
    assert bool((r.eta.abs() >= r.eta_boundary.abs()).all())


def test_bad_input_is_refused():
    with pytest.raises(InvalidInputError, match="d must be"):
        sample_two_layer_ray(0, 10)
    with pytest.raises(InvalidInputError, match="output"):
        sample_two_layer_ray(10, 10, output="uniform")
    with pytest.raises(InvalidInputError, match="x_norm"):
        sample_two_layer_ray(10, 10, x_norm=-1.0)
    with pytest.raises(InvalidInputError, match="piecewise-linear"):
        smallest_flip_step_on_ray(sample_two_layer_ray(10, 10, "tanh"), exact=True)
