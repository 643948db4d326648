"""The attack protocol: one attack problem, one way to write a minimum-norm attack.

Paper:
    De Palma, Kiani, Lloyd, "Adversarial robustness guarantees for random deep neural
    networks", ICML 2021 (Section 4: the closest adversarial example in l1 / l2 / linf);
    Cina et al. 2024 (AttackBench, Section 3: budgets of propagations per sample).

:class:`AttackProblem` carries what every stage of a minimum-norm attack needs: the model (inside
a :class:`randadv.attacks.budget.PropagationCounter` that counts and cuts off every propagation),
the network itself, the inputs x and f(x), the norm, the box and the network's cached
piecewise-linear stack. :class:`MinNormAttack` is the base of every minimum-norm attack: its
final call runs the input checks (:meth:`AttackProblem.of`), the attack's own search
(:meth:`MinNormAttack.search`, within the budget less the verification's reserve), then the one
verification rule (:func:`randadv.attacks.min_norm.finalize`, a forward pass through
:func:`randadv.attacks.verify.verified_adversarial`) and returns the one result type
(:class:`randadv.attacks.min_norm.ClosestResult`). No attack reports a point otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import ClassVar

import torch
from torch import nn

from randadv.attacks.budget import (
    VERIFY_RESERVE,
    ChargedStack,
    PropagationCounter,
    budgeted,
    steps_within,
)
from randadv.attacks.min_norm import Best, Box, ClosestResult, finalize, gradient_stack
from randadv.errors import InvalidInputError
from randadv.protocol.norms import NORMS, Norm, check_norm
from randadv.protocol.piecewise import PiecewiseLinearStack, model_stack

_UNSET = object()


class _NetCache:
    """The network's stack, read once and shared by every view of a problem (the stack is the
    network's whatever the inputs)."""

    def __init__(self) -> None:
        self.stack: object = _UNSET
        self.grads: object = _UNSET


@dataclass
class AttackProblem:
    """One batch of inputs to attack: the model, x, f(x), the norm, the box, the budget's
    counter and the network's piecewise-linear stack (read once, on first use).

    Build it with :meth:`of` (the checks and the counted f(x) pass); the fields are the
    dataclass's.

    Paper:
        De Palma, Kiani, Lloyd 2021, Section 4 (minimise ``||x' - x||_p`` over x' on the other
        side of sign f, inside the box).

    Attributes:
        model: the model every stage queries: a :class:`PropagationCounter` around ``net``.
        net: the network itself (its weights are read for the stack and the region LPs).
        x: (B, ...) inputs.
        f_x: (B,) f(x), from the counted first forward pass.
        norm: the :class:`randadv.protocol.Norm` of the distance.
        box: ``(lo, hi)`` (tensors of one input's shape with a leading 1), or None.
        requested_budget: the budget asked for (None: no limit); defaults that depend on it
            read this, not the counter's current limit (lowered while a reserve is held).
        _cache: private: the network's stacks, read once and shared by every view of the
            problem (:meth:`take`, :meth:`repeated`); leave the default.

    Example:
        >>> import torch
        >>> from randadv.nets import RandomMLP
        >>> from randadv.attacks import AttackProblem
        >>> net, x = RandomMLP([5, 16], seed=0), torch.rand(3, 5)
        >>> problem = AttackProblem.of(net, x, "linf", (0.0, 1.0), budget=100)
        >>> problem.norm, problem.counter.used.tolist(), problem.budget   # the f(x) pass
        (<Norm.LINF: 'linf'>, [1, 1, 1], 100.0)
        >>> problem.default_steps(100, 2, 3)       # (100 - 3 - VERIFY_RESERVE) // 2
        46
        >>> problem.repeated(2).x.shape, problem.take(slice(0, 1)).f_x.shape
        (torch.Size([6, 5]), torch.Size([1]))
        >>> problem.stack is not None              # a ReLU MLP: its piecewise-linear stack
        True
    """

    model: PropagationCounter
    net: nn.Module
    x: torch.Tensor
    f_x: torch.Tensor
    norm: Norm
    box: Box | None
    requested_budget: float | None = None
    _cache: _NetCache = field(default_factory=lambda: _NetCache(), repr=False)

    @classmethod
    def of(cls, model: nn.Module, x: torch.Tensor, norm: str = "l2", bounds: tuple | None = None,
           budget: int | None = None, grad_at_x: bool = False) -> AttackProblem:
        """The checked problem: model, x, norm and bounds validated (typed errors naming the
        problem), f(x) by one counted forward pass, the model wrapped in a counter of
        ``budget`` propagations per input (no limit where None). With ``grad_at_x`` and a
        budget, that pass keeps its autograd graph, so that the first gradient at x
        (:meth:`PropagationCounter.gradient_at_x`) costs one backward."""
        counter, norm, box, f_x = budgeted(model, x, norm, bounds, budget,
                                           keep_graph=grad_at_x and budget is not None)
        # the weights are read through counters around the network (reading them is no
        # propagation; what the stack computes is charged, to those counters too)
        net = model
        while isinstance(net, PropagationCounter):
            net = net.model
        return cls(model=counter, net=net, x=x, f_x=f_x, norm=norm, box=box,
                   requested_budget=None if budget is None else float(budget))

    @property
    def counter(self) -> PropagationCounter:
        """The propagation counter around the network (``model``)."""
        return self.model

    @property
    def budget(self) -> float:
        """Propagations per input the counter allows now (inf without a limit; lower inside a
        reserve's :meth:`PropagationCounter.limited` block)."""
        return self.model.budget

    @property
    def budget_given(self) -> bool:
        """A budget was asked for."""
        return self.requested_budget is not None

    def default_steps(self, unbudgeted: int, per_step: int, fixed: int) -> int:
        """An attack's default step count: ``unbudgeted`` without a budget, else the steps of
        ``per_step`` propagations that fit the requested budget after ``fixed`` propagations
        and the verification's reserve (:func:`randadv.attacks.budget.steps_within`)."""
        if not self.budget_given:
            return unbudgeted
        return steps_within(self.requested_budget, per_step, fixed + VERIFY_RESERVE)

    @property
    def stack(self) -> PiecewiseLinearStack | None:
        """The network's piecewise-linear stack
        (:meth:`randadv.protocol.PiecewiseLinearModel.stack`), None where randadv cannot read
        it; computed on first use and shared by every view of the problem."""
        if self._cache.stack is _UNSET:
            self._cache.stack = model_stack(self.net, self.x)
        return self._cache.stack

    @property
    def grads(self) -> ChargedStack | None:
        """The stack to backpropagate through where that is no dearer than the model
        (:func:`randadv.attacks.min_norm.gradient_stack`), charged to the counter; else None."""
        if self._cache.grads is _UNSET:
            g = gradient_stack(self.net, self.stack)
            self._cache.grads = None if g is None else ChargedStack(g, self.model)
        return self._cache.grads

    def take(self, rows: torch.Tensor | slice) -> AttackProblem:
        """The problem restricted to inputs ``rows`` (same model, counter, norm, box, stack)."""
        return replace(self, x=self.x[rows], f_x=self.f_x[rows])

    def repeated(self, times: int) -> AttackProblem:
        """The problem with every input ``times`` times: row ``j * B + i`` is input i."""
        return replace(self, x=self.x.repeat((times,) + (1,) * (self.x.dim() - 1)),
                       f_x=self.f_x.repeat(times))

    def best(self) -> Best:
        """An empty record of the closest candidate per input (:class:`Best`)."""
        return Best(self.x, self.norm, self.box)

    def finalize(self, best: Best, exact_region: torch.Tensor | None = None,
                 method: str = "closest") -> ClosestResult:
        """The one verification rule (:func:`randadv.attacks.min_norm.finalize`): every
        candidate of ``best`` checked by a forward pass, the result measured."""
        return finalize(self.model, self.x, best, self.f_x, self.norm, self.box, exact_region,
                        method=method)


@dataclass
class Found:
    """What an attack's search hands to the verification: the candidates, the method name,
    optionally the rows whose candidate is an exact region optimum.

    Paper:
        none (utility: the hand-over from :meth:`MinNormAttack.search` to the one
        verification, :meth:`AttackProblem.finalize`).

    Attributes:
        best: the closest candidate per input (:class:`randadv.attacks.min_norm.Best`, from
            :meth:`AttackProblem.best`); nothing in it is reported unverified.
        method: the name the result reports (:attr:`ClosestResult.method`).
        exact_region: (B,) True where the candidate is the exact closest boundary point of its
            linear region; None: nowhere.

    Example:
        >>> import torch
        >>> from randadv.attacks.base import AttackProblem, Found
        >>> net = torch.nn.Linear(2, 1)                    # f(x) = 3 x1 + 4 x2 - 5
        >>> net.weight.data, net.bias.data = torch.tensor([[3.0, 4.0]]), torch.tensor([-5.0])
        >>> problem = AttackProblem.of(net, torch.zeros(1, 2), "l2")
        >>> best = problem.best()
        >>> best.offer(torch.tensor([[1.0, 0.5]]), torch.tensor([True]))   # on the boundary
        >>> found = Found(best, "by hand")
        >>> r = problem.finalize(found.best, found.exact_region, found.method)
        >>> r.success.tolist(), round(float(r.distance), 3), r.method   # pushed just across
        ([True], 1.118, 'by hand')
    """

    best: Best
    method: str
    exact_region: torch.Tensor | None = None


class MinNormAttack:
    """Base of every minimum-norm attack: ``attack(model, x, norm, bounds, budget=...)`` runs
    the input checks (:meth:`AttackProblem.of`), the subclass's :meth:`search` (within the
    budget less :attr:`reserve`), the one verification and returns a :class:`ClosestResult`.

    A subclass sets :attr:`name` (and :attr:`norms` where it supports fewer), takes its
    settings in ``__init__`` and implements :meth:`search`; the arguments below are those of
    the call ``attack(model, x, norm, bounds, budget=...)``.

    Paper:
        Cina et al. 2024 (AttackBench), Section 3: minimum-norm attacks compared at equal
        budgets of propagations; foolbox 3's ``MinimizationAttack`` (verification in the
        base's final call).

    Attributes:
        name: the attack's name (the result's ``method`` unless the search says otherwise).
        norms: the norms it supports (the protocol's three by default).
        reserve: propagations per input kept back from the search for the final verification
            (:data:`randadv.attacks.budget.VERIFY_RESERVE`).

    Arguments:
        model: torch module returning one scalar f per input; the decision is sign f.
        x: inputs (B, ...), floating point.
        norm: one of :attr:`norms`.
        bounds: optional box ``(lo, hi)``.
        budget: model propagations per input (forwards + backwards), the f(x) pass and the
            final verification included; None: no limit.

    Returns:
        :class:`ClosestResult` (of the call), every point verified by a forward pass.

    Example:
        >>> import torch
        >>> from randadv.attacks.base import Found, MinNormAttack
        >>> class Shift(MinNormAttack):                    # offers x + by as its candidate
        ...     name = "shift"
        ...     def __init__(self, by):
        ...         self.by = by
        ...     def search(self, problem):
        ...         best = problem.best()
        ...         best.offer(problem.x + self.by, torch.ones(len(problem.x), dtype=torch.bool))
        ...         return Found(best, self.name)
        >>> net = torch.nn.Linear(2, 1)                    # f(x) = 3 x1 + 4 x2 - 5
        >>> net.weight.data, net.bias.data = torch.tensor([[3.0, 4.0]]), torch.tensor([-5.0])
        >>> r = Shift(torch.tensor([0.0, 2.0]))(net, torch.zeros(1, 2), "l2", budget=10)
        >>> r.success.tolist(), r.distance.tolist(), r.method, r.propagations.tolist()
        ([True], [2.0], 'shift', [4])
        >>> r = Shift(torch.tensor([0.0, 1.0]))(net, torch.zeros(1, 2))   # f = -1: same side
        >>> r.success.tolist(), r.distance.tolist()        # the verification refuses it
        ([False], [inf])
    """

    name: ClassVar[str] = "attack"
    # the norms the attack supports (the protocol's three by default)
    norms: ClassVar[tuple[str, ...]] = NORMS
    # propagations per input kept back from the search for the final verification
    reserve: ClassVar[int] = VERIFY_RESERVE

    def __call__(self, model: nn.Module, x: torch.Tensor, norm: str = "l2",
                 bounds: tuple | None = None, *, budget: int | None = None) -> ClosestResult:
        if tuple(self.norms) != NORMS and check_norm(norm) not in self.norms:
            raise InvalidInputError(f"{self.name.upper()} is an {'/'.join(self.norms)} attack, "
                                    f"got norm={norm!r}")
        problem = AttackProblem.of(model, x, norm, bounds, budget,
                                   grad_at_x=self.keeps_start_graph())
        with problem.counter.limited(problem.budget - self.reserve):
            found = self.search(problem)
        return problem.finalize(found.best, found.exact_region, found.method)

    def search(self, problem: AttackProblem) -> Found:
        """The attack's own steps: candidates offered to a :class:`Best` (never reported
        without the verification that follows)."""
        raise NotImplementedError

    def keeps_start_graph(self) -> bool:
        """Whether the f(x) pass keeps its autograd graph (``counter.start_graph``): True for a
        search that starts with a gradient at x, which then costs one backward under a budget
        (:meth:`AttackProblem.of`, :meth:`PropagationCounter.gradient_at_x`)."""
        return False

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({params})"


__all__ = ["AttackProblem", "Found", "MinNormAttack"]
