"""The forward-pass check every reported adversarial example goes through
(randadv.attacks.verify): a point within the forward pass's rounding noise of the boundary is
not reported as adversarial until it has been pushed clearly past it."""

import torch
from torch import nn

from randadv.attacks.verify import (
    push_margins,
    rounding_bound,
    verified_adversarial,
)
from randadv.protocol import verified_flip


class Affine(nn.Module):
    def __init__(self, w: torch.Tensor, b: float) -> None:
        super().__init__()
        self.w, self.b = w, b

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x @ self.w + self.b


def test_verified_flip_needs_a_sign_change_above_the_bound():
    f_x = torch.tensor([37.0, 37.0, 37.0, -2.0, -2.0])
    bound = torch.full((5,), 1e-5)
    f_adv = torch.tensor([-1e-6, -1e-2, 5.0, 3e-5, 1e-5])
    assert verified_flip(f_adv, f_x, bound).tolist() == [False, True, False, True, False]


def test_candidate_just_past_the_boundary_is_pushed_beyond_the_guard():
    dt = torch.float64
    model = Affine(torch.ones(8, dtype=dt), -37.0)     # f(x) = sum(x) - 37
    x = torch.full((1, 8), 37.0 / 8 + 4.0, dtype=dt)   # f(x) = 32
    f_x = model(x)
    # a candidate whose output is -1e-13: adversarial by sign (rounding here ~1e-14), but inside
    # the rounding bound 32 eps (|f| + sum |x_i|) = 2.6e-13
    direction = -torch.ones(1, 8, dtype=dt) / 8
    t_b = f_x + 1e-13
    cand = x + t_b.view(-1, 1) * direction
    f_cand = model(cand)
    assert float(f_cand) < 0
    assert not bool(verified_flip(f_cand, f_x, rounding_bound(model, cand)))
    x_adv, success, f_adv, _ = verified_adversarial(model, x, cand, f_x)
    assert bool(success[0])
    assert bool(verified_flip(model(x_adv), f_x, rounding_bound(model, x_adv))[0])
    assert float(f_adv.abs()) > float(rounding_bound(model, cand)[0])
    # the push is tiny: relative distance change well below the largest margin (1e-3)
    d0, d1 = (cand - x).norm(), (x_adv - x).norm()
    assert 1 < float(d1 / d0) < 1 + 1e-10


def test_candidate_on_the_wrong_side_is_not_reported():
    model = Affine(torch.ones(4), 0.0)
    x = torch.ones(1, 4)
    cand = 0.5 * x                             # same sign, f = 2
    x_adv, success, _, _ = verified_adversarial(model, x, cand, model(x))
    assert not bool(success[0]) and torch.equal(x_adv, x)


class Counting(nn.Module):
    """A model that counts the rows it evaluates."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner, self.rows = inner, 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.rows += x.shape[0]
        return self.inner(x)


def test_give_up_drops_estimates_far_from_the_boundary_after_one_pass():
    from randadv.attacks.verify import verified_flip_along
    dt = torch.float64
    model = Counting(Affine(torch.ones(4, dtype=dt), -4.0))   # f = sum(x) - 4
    x = torch.full((2, 4), 2.0, dtype=dt)                      # f(x) = 4
    f_x = model(x)
    direction = -torch.ones(2, 4, dtype=dt)
    # row 0: the exact boundary step (t = 1); row 1: an estimate that stops at f = 2 (t = 0.5)
    t_b = torch.tensor([1.0, 0.5], dtype=dt)
    model.rows = 0
    t, flipped, _, _ = verified_flip_along(model, x, direction, t_b, f_x)
    assert flipped.tolist() == [True, False]
    # the rounding bound's pass (2 rows), then row 1 tried every rung of the ladder
    assert model.rows == 2 + 2 + push_margins(f_x, f_x).shape[1] - 1
    model.rows = 0
    t2, flipped2, _, _ = verified_flip_along(model, x, direction, t_b, f_x, give_up=1e-2)
    assert flipped2.tolist() == [True, False] and model.rows == 2 + 2   # one push pass
    assert float(t2[0]) == float(t[0])


class _BatchRounding(nn.Module):
    """f(y) = w . y - 1, plus ``shift`` when evaluated in a batch of more than one: a model
    whose output depends on the batch it is evaluated in, like float32 matrix products."""

    def __init__(self, shift: float) -> None:
        super().__init__()
        self.shift = shift

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        f = y.sum(1) - 1.0
        return f + self.shift if y.shape[0] > 1 else f


def test_verified_adversarial_needs_the_flip_alone_and_in_the_batch():
    """Candidates just across f = 0 (f(x) > 0 side is the start, so the flip is f < 0): in a
    batch the output is shifted by +1e-4, which undoes a flip closer than that; each point must
    be pushed until it flips both alone and in the batch, and no further than one more rung of
    the margin ladder."""
    x = torch.full((3, 4), 0.5, dtype=torch.float64)            # f(x) = 1 > 0
    f_x = x.sum(1) - 1.0
    t_star = 0.25                                                # f(x - t 1) = 1 - 4 t
    cand = x - t_star * (1 + 1e-9) * torch.ones_like(x)          # just across: f = -1e-9
    cand[:2] = x[:2] - 2 * t_star                                # clearly across: f = -1
    model = _BatchRounding(1e-4)
    # row 2 fails in the batch of 3, then is pushed alone (no shift): the old ladder accepted
    # it at the first rung, where the batch of all three still puts it on x's side
    x_adv, ok, f_adv, _ = verified_adversarial(model, x, cand, f_x)
    assert bool(ok.all())
    assert torch.equal(x_adv[:2], cand[:2])
    with torch.no_grad():
        assert bool((model(x_adv) < 0).all())                          # in the batch
        assert all(float(model(x_adv[i:i + 1])[0]) < 0 for i in range(3))  # alone
    # the push that clears the batch's shift: f = -(1 + m)(1 + 1e-9) + 1 < -1e-4, with m the
    # first rung of the ladder that gets there
    m = ((x_adv[2:] - x[2:]).norm(dim=1) / (cand[2:] - x[2:]).norm(dim=1) - 1)
    with torch.no_grad():
        ladder = push_margins(f_x[2:], rounding_bound(model, cand[2:]))[0]
    needed = ladder[(1 + ladder) * (1 + 1e-9) - 1 > 1e-4][0]
    torch.testing.assert_close(m, torch.full_like(m, float(needed)), rtol=1e-6, atol=0)
    # the same candidates without the shift need no push at all
    x_adv0, ok0, _, _ = verified_adversarial(_BatchRounding(0.0), x, cand, f_x)
    assert bool(ok0.all()) and torch.equal(x_adv0, cand)
