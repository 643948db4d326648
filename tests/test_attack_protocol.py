"""The attack protocol (randadv.attacks.base): every minimum-norm attack is a MinNormAttack whose
final call checks the input, runs the attack's search and sends every candidate through the one
verification; the attack problem carries model, x, f(x), norm, box and the stack."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from randadv.attacks import DDN, FAB, FMN, ClosestAdversarial, DeepFool
from randadv.attacks.base import AttackProblem, Found, MinNormAttack
from randadv.errors import InvalidInputError
from randadv.protocol import Norm, lp_norm


def _net(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(5, 12), nn.ReLU(), nn.Linear(12, 1))


class _Offer(MinNormAttack):
    """Offers fixed candidates: the protocol, not the attack, decides what is reported."""

    name = "offer"

    def __init__(self, points: torch.Tensor) -> None:
        self.points = points

    def search(self, problem: AttackProblem) -> Found:
        best = problem.best()
        best.offer(self.points, torch.ones(len(self.points), dtype=torch.bool))
        return Found(best, self.name)


def test_an_unverified_candidate_is_never_reported():
    torch.manual_seed(0)
    net = nn.Linear(5, 1)
    x = torch.rand(4, 5)
    with torch.no_grad():
        f = net(x).view(-1)
        w = net.weight[0]
    # row 0: x itself (not adversarial); the others: the reflection of x through the
    # hyperplane f = 0 of this affine model (adversarial, |f| unchanged)
    far = x - 2 * (f / w.dot(w)).view(-1, 1) * w
    with torch.no_grad():
        assert bool((torch.sign(net(far).view(-1)) != torch.sign(f)).all())
    points = torch.cat([x[:1], far[1:]])
    r = _Offer(points)(net, x, "l2")
    assert r.success.tolist() == [False, True, True, True]
    assert math.isinf(float(r.distance[0])) and torch.equal(r.x_adv[0], x[0])
    torch.testing.assert_close(r.distance[1:], lp_norm(r.x_adv[1:] - x[1:], "l2"))
    with torch.no_grad():
        f_adv = net(r.x_adv[1:]).view(-1)
    assert bool((torch.sign(f_adv) != torch.sign(f[1:])).all())
    assert bool((r.verified_margin[1:] > 1).all())
    assert r.method == "offer" and r.propagations is not None


def test_the_problem_checks_its_input_and_shares_the_stack():
    net = _net(1)
    x = torch.rand(3, 5)
    p = AttackProblem.of(net, x, "inf", (0.0, 1.0), budget=50)
    assert p.norm is Norm.LINF and p.budget == 50 and p.requested_budget == 50
    assert p.counter.used.tolist() == [1, 1, 1]          # the f(x) pass
    rep = p.repeated(2)
    assert rep.x.shape == (6, 5) and torch.equal(rep.f_x[3:], p.f_x)
    assert rep.stack is p.stack is not None and p.take(slice(1, None)).stack is p.stack
    with pytest.raises(InvalidInputError, match="outside"):
        AttackProblem.of(net, x + 2, "l2", (0.0, 1.0))
    with pytest.raises(InvalidInputError, match="norm"):
        AttackProblem.of(net, x, "l3")


@pytest.mark.parametrize("attack", [FMN(steps=20), DDN(steps=20), FAB(steps=5, n_starts=2),
                                    DeepFool(), ClosestAdversarial(steps=5)])
def test_every_attack_is_a_min_norm_attack_within_its_budget(attack):
    net = _net(2)
    x = torch.rand(5, 5)
    r = attack(net, x, "l2", (0.0, 1.0), budget=40)
    assert isinstance(attack, MinNormAttack) and repr(attack).startswith(type(attack).__name__)
    assert bool((r.propagations <= 40).all())
    with torch.no_grad():
        f_x, f_adv = net(x).view(-1), net(r.x_adv).view(-1)
    s = r.success
    assert bool((torch.sign(f_adv[s]) != torch.sign(f_x[s])).all())


def test_an_l2_attack_refuses_other_norms():
    with pytest.raises(InvalidInputError, match="DDN is an l2 attack"):
        DDN()(_net(), torch.rand(2, 5), "l1")


def test_exact_min_distance_returns_the_one_result_type():
    from randadv import exact
    from randadv.protocol.result import AdversarialResult

    net = _net(3)
    x = torch.rand(2, 5)
    for r, xi in zip(exact.min_distance(net, x, "l1", (0.0, 1.0)), x, strict=True):
        assert isinstance(r, AdversarialResult) and isinstance(r, exact.ExactDistance)
        assert r.success and r.verified and r.propagations is None
        with torch.no_grad():
            f_adv, f_x = float(net(r.x_adv[None])), float(net(xi[None]))
        assert (f_adv > 0) != (f_x > 0)
        assert r.distance == pytest.approx(float(lp_norm(r.x_adv[None] - xi[None], "l1")))
        assert r.verified_margin == pytest.approx(abs(r.f_adv) / r.rounding_bound)


class _GradientAtX(_Offer):
    """Offers nothing and reads the counter's gradient at x: one backward under a budget where
    the f(x) pass kept its graph (:meth:`MinNormAttack.keeps_start_graph`)."""

    def __init__(self, keep: bool) -> None:
        super().__init__(torch.empty(0, 5))
        self.keep, self.grad = keep, None

    def keeps_start_graph(self) -> bool:
        return self.keep

    def search(self, problem: AttackProblem) -> Found:
        self.grad = problem.counter.gradient_at_x()
        return Found(problem.best(), self.name)


def test_keeps_start_graph_decides_whether_the_gradient_at_x_is_one_backward():
    assert FMN().keeps_start_graph() and ClosestAdversarial().keeps_start_graph()
    assert not ClosestAdversarial(methods=("fab",)).keeps_start_graph()
    assert not DDN().keeps_start_graph() and not _Offer(torch.empty(0, 5)).keeps_start_graph()
    net = _net(4)
    x = torch.rand(3, 5)
    for keep in (True, False):
        attack = _GradientAtX(keep)
        attack(net, x, "l2", budget=10)
        assert (attack.grad is not None) == keep
    # without a budget no graph is kept whatever the attack says
    attack = _GradientAtX(True)
    attack(net, x, "l2")
    assert attack.grad is None
