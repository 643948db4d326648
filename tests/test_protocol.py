"""randadv.protocol: the Norm type and the rounding bound, shared by attacks and exact."""

from __future__ import annotations

import json
import math

import pytest
import torch

from randadv.errors import InvalidInputError
from randadv.protocol import Norm, check_norm, rounding_bound_of


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
