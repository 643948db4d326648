"""randadv.protocol: the Norm type and the rounding bound, shared by attacks and exact."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from randadv.errors import InvalidInputError
from randadv.protocol import Norm, check_norm, rounding_bound_of
from randadv.protocol.adversarial import recheck_example


@pytest.mark.parametrize("alias,name", [("l1", "l1"), ("1", "l1"), ("L2", "l2"), ("2", "l2"),
                                        ("inf", "linf"), ("l_inf", "linf"), ("linf", "linf")])
def test_norm_aliases(alias, name):
    n = check_norm(alias)
    assert isinstance(n, Norm) and n == name and str(n) == name
    assert {"l1": 1, "l2": 2, "linf": 3}[n] == {"l1": 1, "l2": 2, "linf": 3}[name]
    assert json.dumps(n) == json.dumps(name)


def test_norm_exponent_and_dual():
    assert (Norm.L1.p, Norm.L2.p, Norm.LINF.p) == (1.0, 2.0, math.inf)
    assert Norm.L1.dual is Norm.LINF and Norm.L2.dual is Norm.L2
    assert Norm.LINF.dual.dual is Norm.LINF


def test_unknown_norm_names_the_known_ones():
    with pytest.raises(InvalidInputError, match="l1.*l2.*linf"):
        check_norm("l3")


def test_rounding_bound_of_sums_first_layer_terms():
    x = torch.tensor([[1.0, -2.0], [0.0, 3.0]])
    g = torch.tensor([[0.5, 0.5], [1.0, -1.0]])
    f = torch.tensor([0.25, -1.0])
    eps = torch.finfo(torch.float32).eps
    expected = 32 * eps * torch.tensor([0.25 + 0.5 + 1.0, 1.0 + 0.0 + 3.0])
    assert torch.allclose(rounding_bound_of(f, g, x), expected)
    # eps of the model's dtype on float64 points
    b64 = rounding_bound_of(f.double(), g.double(), x.double(), dtype=torch.float32)
    assert b64.dtype == torch.float64 and torch.allclose(b64.float(), expected)


# ------------------------------------------------------------- is_adversarial, norms, result
def test_is_adversarial_is_strict_and_takes_a_margin():
    from randadv.protocol import is_adversarial

    f = torch.tensor([-0.5, 0.0, 0.2, float("nan"), -1e-8, 3.0])
    f_x = torch.tensor([1.0, 1.0, 1.0, 1.0, 1.0, 0.0])
    # f = 0 is on the boundary, NaN never counts, f(x) = 0 has no side to leave
    assert is_adversarial(f, f_x).tolist() == [True, False, False, False, True, False]
    # a margin (e.g. the rounding bound) per point
    margin = torch.tensor([0.1, 0.0, 0.0, 0.0, 1e-7, 0.0])
    assert is_adversarial(f, f_x, margin).tolist() == [True, False, False, False, False, False]
    # the exact solvers' numpy form: the same answers
    out = is_adversarial(np.array([-0.5, 0.5, 1e-8]), -1.0)
    assert isinstance(out, np.ndarray) and out.tolist() == [False, True, True]


@pytest.mark.parametrize("norm", ["l1", "l2", "linf"])
def test_lp_norm_and_numpy_pnorm_agree_with_their_definitions(norm):
    from randadv.protocol import dual_norm, dual_pnorm, lp_norm, pnorm

    v = torch.tensor([[3.0, -4.0, 0.0], [0.0, 0.0, 0.0], [-1.0, 2.0, -2.0]], dtype=torch.float64)
    expect = {"l1": [7.0, 0.0, 5.0], "l2": [5.0, 0.0, 3.0], "linf": [4.0, 0.0, 2.0]}
    dual = {"l1": "linf", "l2": "l2", "linf": "l1"}[norm]
    assert lp_norm(v, norm).tolist() == expect[norm]
    assert pnorm(v.numpy(), norm).tolist() == expect[norm]
    assert dual_norm(v, norm).tolist() == expect[dual]
    assert dual_pnorm(v.numpy(), norm).tolist() == expect[dual]
    # rows of any shape are flattened
    assert lp_norm(v.reshape(3, 1, 3), norm).tolist() == expect[norm]


def test_result_verified_margin():
    from randadv.protocol.result import AdversarialResult

    r = AdversarialResult(success=torch.tensor([True]), distance=torch.tensor([0.5]),
                          x_adv=torch.zeros(1, 2), f_x=torch.tensor([1.0]),
                          f_adv=torch.tensor([-3e-5]), norm="l2",
                          rounding_bound=torch.tensor([1e-5]))
    assert torch.allclose(r.verified_margin, torch.tensor([3.0]))
    one = AdversarialResult(success=True, distance=0.5, x_adv=None, f_x=1.0, f_adv=-2e-6,
                            norm="l1", rounding_bound=1e-6)
    assert one.verified_margin == pytest.approx(2.0)
    assert AdversarialResult(success=False, distance=math.inf, x_adv=None, f_x=1.0, f_adv=None,
                             norm="l1").verified_margin is None


def test_check_box_is_the_one_reading_of_bounds_for_attacks_and_exact():
    from randadv.attacks.min_norm import box_of
    from randadv.exact.distance import _as_box
    from randadv.protocol import check_box

    # per-pixel lower bounds of a (1, 2, 2) image, a scalar upper bound
    lo_img = torch.tensor([[[0.0, 0.1], [0.2, 0.3]]])
    x = torch.full((3, 1, 2, 2), 0.5)
    lo_a, hi_a = box_of(x, (lo_img, 1.0))          # the attacks: one sample's shape, leading 1
    lo_e, hi_e = _as_box((lo_img, 1.0), 4)          # exact: flat float64 arrays
    assert lo_a.shape == (1, 1, 2, 2) and lo_e.shape == (4,) and lo_e.dtype == np.float64
    assert lo_a.double().flatten().numpy().tolist() == lo_e.tolist()
    assert hi_a.flatten().tolist() == hi_e.tolist() == [1.0] * 4
    # fresh tensors: writing into the box leaves the caller's bounds alone
    lo, _ = check_box((lo_img, 1.0), (1, 2, 2), torch.float32)
    lo += 1
    assert lo_img.flatten().tolist() == pytest.approx([0.0, 0.1, 0.2, 0.3])
    # a bound with one value per coordinate is read flat only where asked
    assert check_box((lo_img, 1.0), (4,), torch.float32, flat=True)[0].shape == (4,)
    with pytest.raises(InvalidInputError, match="do not broadcast"):
        check_box((lo_img, 1.0), (4,), torch.float32)
    for bad, match in [(0.5, "None or \\(lo, hi\\)"), ((0.0, 1.0, 2.0), "None or \\(lo, hi\\)"),
                       ((1.0, 0.0), "lo <= hi"), ((float("nan"), 1.0), "no NaN")]:
        with pytest.raises(InvalidInputError, match=match):
            check_box(bad, (2,), torch.float64)
    with pytest.raises(InvalidInputError, match="outside bounds"):
        box_of(x, (0.0, 0.25))


def test_recheck_example_rejects_non_adversarial_points():
    net = torch.nn.Sequential(torch.nn.Linear(2, 1)).double()
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([[1.0, 0.0]]))
        net[0].bias.zero_()
    x = torch.tensor([0.5, 0.5], dtype=torch.float64)
    good = torch.tensor([-0.1, 0.5], dtype=torch.float64)
    assert recheck_example(net, x, good, None, "l2", 0.6)
    same_side = torch.tensor([0.1, 0.5], dtype=torch.float64)
    assert not recheck_example(net, x, same_side, None, "l2", 0.4)
    assert not recheck_example(net, x, good, None, "l2", 0.5)             # wrong distance
    assert not recheck_example(net, x, good, (0.0, 1.0), "l2", 0.6)       # outside the box
    on = torch.tensor([0.0, 0.5], dtype=torch.float64)
    assert not recheck_example(net, x, on, None, "l2", 0.5)
    assert recheck_example(net, x, on, None, "l2", 0.5, allow_zero=True)


def test_recheck_example_takes_a_boundary_point_up_to_rounding_only_with_allow_zero():
    """f = x0 + x1 + x2 at (0.1, 0.2, -0.3) is 0 in exact arithmetic and about 3e-17 in
    float64, its sign the rounding's: a point on the boundary up to rounding (an exact
    solver's witness on a plateau). x is put on the side of that rounded value, so the point
    is not adversarial on any CPU; allow_zero takes it (|f| <= the rounding bound
    32 eps (|f| + sum |x_i df/dx_i|), about 4e-15), and a point 1e-3 from the boundary on x's
    side is refused either way."""
    net = torch.nn.Linear(3, 1, bias=False).double()
    with torch.no_grad():
        net.weight.fill_(1.0)
        on = torch.tensor([0.1, 0.2, -0.3], dtype=torch.float64)
        f_on = float(net(on[None]))
    assert abs(f_on) < 1e-16
    side = 1.0 if f_on >= 0 else -1.0
    x = torch.full((3,), side, dtype=torch.float64)
    d = float(torch.linalg.vector_norm(on - x))
    assert recheck_example(net, x, on, None, "l2", d, allow_zero=True)
    assert not recheck_example(net, x, on, None, "l2", d)
    near = on + side * torch.tensor([0.0, 0.0, 1e-3], dtype=torch.float64)
    d_near = float(torch.linalg.vector_norm(near - x))
    assert not recheck_example(net, x, near, None, "l2", d_near, allow_zero=True)
