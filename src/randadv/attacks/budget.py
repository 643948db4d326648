"""Budgets of model propagations per sample: a counting wrapper for any scalar-output model.

Paper:
    Cina, Rony, Pintor, Demetrio, Demontis, Biggio, Ben Ayed, Roli, "AttackBench: evaluating
    gradient-based attacks for adversarial examples", 2024 (Section 3: attacks compared at equal
    budgets of forward and backward propagations per sample; a sample whose budget is spent gets
    no more; the best adversarial point seen at any query is scored).

One propagation is one forward or one backward pass of one sample: a gradient step costs 2.

:class:`PropagationCounter` wraps a model ``f`` (one scalar per input, decision sign f) for one
batch of originals ``x`` (:meth:`PropagationCounter.begin`):

* a query batch of B rows (the batch's size) is the batch itself, row k from original k (as
  AttackBench counts; attacks that blend inputs with noise query far from them); other batches
  (subsets, several starts per input) are attributed row by row to the nearest original in l2
  (attacks query points near their own input: a row must lie nearer its own original than any
  other, within half the gap between inputs; uniform images in [0, 1]^n are about
  sqrt(n / 6) apart). ``attribution="nearest"`` uses the nearest original for every batch;
  an attack that knows whose points it queries names them (:meth:`PropagationCounter.attributed`),
  and a counter around the model begun on the same originals is told the same;
* a forward of a row counts 1; a forward with autograd recording on an input that requires
  grad reserves 2 (the backward that follows counts the second), so the count never exceeds
  the budget whatever the call pattern;
* a row whose sample has no budget left is refused: its query is not evaluated and its output
  is a constant (zero gradient): f(x) of its original by default, so an attack sees it as
  unmoved and robust (``refused="zero"``: 0, which no sign test of randadv counts as a flip
  whichever original a far query is attributed to: randadv's own attacks use it);
* queries are clamped to the box before the model sees them;
* the closest adversarial query of each sample is kept (:meth:`PropagationCounter.result`
  verifies it by :func:`randadv.attacks.verify.verified_adversarial` on the unwrapped model:
  that check is outside the budget; randadv's own attacks verify inside it).

Example::

    >>> net = torch.nn.Sequential(torch.nn.Linear(10, 32), torch.nn.ReLU(),
    ...                           torch.nn.Linear(32, 1))
    >>> x = torch.rand(4, 10)
    >>> counter = PropagationCounter(net, budget=100, box=(0.0, 1.0))
    >>> counter.begin(x)
    >>> _ = some_attack(counter, x)            # any attack that takes a torch model
    >>> counter.used                           # (4,) propagations per sample, <= 100
    >>> best = counter.result()                # ClosestResult of the best points seen
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

from randadv.attacks.checks import check_attack_input, scalar_output
from randadv.attacks.min_norm import Best, ClosestResult, box_of, prepare
from randadv.attacks.verify import verified_adversarial
from randadv.errors import InvalidInputError
from randadv.protocol.adversarial import is_adversarial
from randadv.protocol.norms import check_norm, lp_norm


def _occurrence_rank(ids: torch.Tensor) -> torch.Tensor:
    """For each entry, how many earlier entries carry the same id (0 for the first)."""
    n = ids.shape[0]
    order = torch.sort(ids, stable=True).indices
    sid = ids[order]
    pos = torch.arange(n, device=ids.device)
    start = torch.ones(n, dtype=torch.bool, device=ids.device)
    start[1:] = sid[1:] != sid[:-1]
    first = torch.cummax(torch.where(start, pos, torch.zeros_like(pos)), 0).values
    rank = torch.empty_like(pos)
    rank[order] = pos - first
    return rank


def _version_of(t: torch.Tensor) -> int | None:
    """The in-place version counter of ``t`` (None for inference tensors, which have none)."""
    return None if t.is_inference() else t._version


def _allowance(used: torch.Tensor, ids: torch.Tensor, cost: int, budget: float
               ) -> torch.Tensor:
    """Rows whose charge of ``cost`` (rows of one sample in batch order) fits the budget."""
    rank = _occurrence_rank(ids)
    return used[ids] + cost * (rank + 1) <= budget


class _CountBackward(torch.autograd.Function):
    """Identity whose backward counts one propagation per row and zeroes the rows of samples
    with no budget left."""

    @staticmethod
    def forward(ctx, q: torch.Tensor, counter: PropagationCounter, ids: torch.Tensor
                ) -> torch.Tensor:
        ctx.counter, ctx.ids = counter, ids
        return q.view_as(q)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        c, ids = ctx.counter, ctx.ids
        ok = _allowance(c.forwards + c.backwards, ids, 1, c.budget)
        c.backwards.index_add_(0, ids[ok], torch.ones_like(ids[ok]))
        view = (-1,) + (1,) * (grad.dim() - 1)
        return grad * ok.view(view).to(grad.dtype), None, None


class PropagationCounter(nn.Module):
    """Counts forward and backward propagations per sample, cuts each sample off at ``budget``,
    clamps queries to ``box`` and keeps the closest adversarial query per sample.

    Paper: Cina et al. 2024 (AttackBench), Section 3: budgets of propagations per sample.

    Arguments:
        model: torch module returning one scalar f per input ((B,) or (B, 1)).
        budget: propagations per sample (forwards + backwards); None: no limit (count only).
        box: optional ``(lo, hi)`` (scalars or tensors of one input's shape) every query is
            clamped to; the originals must lie in it.
        norm: ``"l1"``, ``"l2"`` or ``"linf"``: the distance of the best adversarial query.
        track_best: keep the closest adversarial query per sample (off: counting only).
        refused: output of refused rows: ``"f_x"`` (f at the row's original) or ``"zero"``.
        attribution: ``"batch"`` (a batch of B rows is row k from original k, other batches by
            the nearest original) or ``"nearest"`` (every row by its nearest original).

    Attributes (after :meth:`begin`):
        forwards, backwards: (B,) counts per sample; ``used`` their sum.

    Returns:
        ``forward(q)``: (N,) outputs, f at the clamped queries, f(x) of the original for the
        rows refused (no budget left).

    Example:
        >>> import torch
        >>> from randadv.nets import RandomMLP
        >>> from randadv.attacks import value_and_grad
        >>> from randadv.attacks.budget import PropagationCounter
        >>> net, x = RandomMLP([5, 8], seed=0), torch.rand(3, 5)
        >>> counter = PropagationCounter(net, budget=20, box=(0.0, 1.0))
        >>> counter.begin(x)
        >>> f, g = value_and_grad(counter, x)         # 1 forward + 1 backward per sample
        >>> counter.used.tolist()
        [2, 2, 2]
    """

    def __init__(self, model: nn.Module, budget: float | None = None, box: tuple | None = None,
                 norm: str = "l2", track_best: bool = True, refused: str = "f_x",
                 attribution: str = "batch") -> None:
        super().__init__()
        if not isinstance(model, nn.Module):
            raise InvalidInputError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        self.model = model
        self.budget = check_budget(budget)
        self.norm = check_norm(norm)
        self.bounds = box
        self.track_best = track_best
        if refused not in ("f_x", "zero"):
            raise InvalidInputError(f"refused must be 'f_x' or 'zero', got {refused!r}")
        self.refused_output = refused
        if attribution not in ("batch", "nearest"):
            raise InvalidInputError(f"attribution must be 'batch' or 'nearest', got "
                                    f"{attribution!r}")
        self.attribution = attribution
        self.x: torch.Tensor | None = None
        self._nested_seen: tuple | None = None
        self._nested_same = False
        self.start_graph: tuple[torch.Tensor, torch.Tensor] | None = None
        self._owners: torch.Tensor | None = None

    def begin(self, x: torch.Tensor, f_x: torch.Tensor | None = None, charge: int = 0) -> None:
        """Start counting for the originals ``x`` (B, ...): counts to ``charge`` (e.g. 1 for the
        forward pass that gave ``f_x``), f(x) from ``f_x`` or one uncounted forward pass."""
        if f_x is None:
            norm, box, f0 = prepare(self.model, x, self.norm, self.bounds)
        else:
            norm, f0 = self.norm, f_x
            box = None if self.bounds is None else box_of(check_attack_input(x), self.bounds)
        self.x = x.detach()
        self.box = box
        self.f_x = f0.detach().to(x.dtype)
        b = x.shape[0]
        self.forwards = torch.full((b,), int(charge), dtype=torch.long, device=x.device)
        self.backwards = torch.zeros(b, dtype=torch.long, device=x.device)
        self.refused = torch.zeros(b, dtype=torch.long, device=x.device)
        self.best = Best(self.x, norm, box)
        self._flat = self.x.reshape(b, -1)
        # half the l2 gap of each original to its nearest other one: a query row k of a batch
        # of B rows closer than that to original k is attributed to it without a search
        if b > 1:
            gaps = torch.cdist(self._flat, self._flat)
            gaps.fill_diagonal_(float("inf"))
            self._half_gap = 0.5 * gaps.amin(1)
        else:
            self._half_gap = torch.full((1,), float("inf"), dtype=x.dtype, device=x.device)

    def gradient_at_x(self) -> torch.Tensor | None:
        """grad f at the originals from the graph of the counted f(x) pass
        (:func:`budgeted` with ``keep_graph``): one backward per sample, charged (rows with no
        budget left get 0); None where no graph was kept. The graph is used once."""
        if self.start_graph is None:
            return None
        xg, f = self.start_graph
        self.start_graph = None
        # the backward runs through the model: a counter around it counts it itself
        ok = self.charge(self.x, 0, 1, nested=False)
        (g,) = torch.autograd.grad(f.sum(), xg, allow_unused=True)
        if g is None:
            g = torch.zeros_like(xg)
        view = (-1,) + (1,) * (g.dim() - 1)
        return (g.detach() * ok.view(view).to(g.dtype)).to(self.x.dtype)

    @property
    def used(self) -> torch.Tensor:
        """(B,) propagations per sample so far."""
        return self.forwards + self.backwards

    @property
    def left(self) -> torch.Tensor:
        """(B,) propagations left per sample (inf without a budget)."""
        return self.budget - self.used.to(torch.float64)

    @contextmanager
    def limited(self, budget: float) -> Iterator[None]:
        """Within the block, a lower budget (e.g. the budget less a reserve for a final
        verification)."""
        old = self.budget
        self.budget = min(old, float(budget))
        try:
            yield
        finally:
            self.budget = old

    @contextmanager
    def attributed(self, ids: torch.Tensor) -> Iterator[None]:
        """Within the block, a query batch of ``len(ids)`` rows is row k from original
        ``ids[k]`` (an attack that knows whose point it queries: a point far from its own
        original can lie nearer another one, and the nearest-original rule then charges the
        wrong sample)."""
        old = self._owners
        self._owners = ids.to(torch.long)
        try:
            yield
        finally:
            self._owners = old

    def sample_of(self, q: torch.Tensor) -> torch.Tensor:
        """(N,) index of the original of each query row (see ``attribution`` and
        :meth:`attributed`)."""
        if self.x is None:
            raise InvalidInputError("PropagationCounter.begin(x) must be called before use")
        if self._owners is not None and q.shape[0] == self._owners.shape[0]:
            return self._owners.to(q.device)
        flat = q.detach().reshape(q.shape[0], -1).to(self._flat.dtype)
        if flat.shape[1] != self._flat.shape[1]:
            raise InvalidInputError(f"query rows of {flat.shape[1]} entries, originals of "
                                    f"{self._flat.shape[1]}")
        b = self._flat.shape[0]
        if b == 1:
            return torch.zeros(q.shape[0], dtype=torch.long, device=q.device)
        if flat.shape[0] == b:
            own = torch.arange(b, device=q.device)
            if self.attribution == "batch" or bool(
                    ((flat - self._flat).norm(dim=1) < self._half_gap).all()):
                return own
        return torch.cdist(flat, self._flat).argmin(1)

    def charge(self, q: torch.Tensor, forwards: int = 1, backwards: int = 0,
               nested: bool = True) -> torch.Tensor:
        """Charge computations done outside the model (e.g. a gradient through the model's own
        matrices: 1 forward + 1 backward) for the rows of ``q``; returns the (N,) rows that fit
        (only those are charged; the caller must discard the others). A counter around the
        model is charged too unless ``nested`` is False (for passes that run through the model,
        which that counter counts itself)."""
        ids = self.sample_of(q)
        ok = _allowance(self.used, ids, forwards + backwards, self.budget)
        if nested and isinstance(self.model, PropagationCounter) and bool(ok.any()):
            # a counter around the model is charged too (begun on the same originals: the
            # same samples; else by its own attribution), and what it refuses is refused here
            rows = torch.nonzero(ok).flatten()
            if self._nested():
                with self.model.attributed(ids[rows]):
                    got = self.model.charge(q[rows], forwards, backwards)
            else:
                got = self.model.charge(q[rows], forwards, backwards)
            ok[rows[~got]] = False
        self.forwards.index_add_(0, ids[ok], torch.full_like(ids[ok], forwards))
        self.backwards.index_add_(0, ids[ok], torch.full_like(ids[ok], backwards))
        self.refused.index_add_(0, ids[~ok], torch.ones_like(ids[~ok]))
        return ok

    def forward(self, q: torch.Tensor) -> torch.Tensor:
        ids = self.sample_of(q)
        grad = torch.is_grad_enabled() and q.requires_grad
        ok = _allowance(self.used, ids, 2 if grad else 1, self.budget)
        if self.box is not None:
            q = torch.minimum(torch.maximum(q, self.box[0]), self.box[1])
        out = self._frozen(ids).to(q.dtype)
        if grad:
            # refused rows stay in the graph with zero gradient (a batch of refused rows only
            # still has an output that requires grad)
            out = out + 0 * q.reshape(q.shape[0], -1).sum(1)
        rows = torch.nonzero(ok).flatten()
        if rows.numel():
            qs = q[rows]
            if grad:
                qs = _CountBackward.apply(qs, self, ids[rows])
            b = self._flat.shape[0]
            if self._owners is not None and self._nested():
                # a counter around the model with the same originals: the same attribution
                with self.model.attributed(ids[rows]):
                    f = scalar_output(self.model, qs).to(q.dtype)
            elif rows.numel() == b and b > 1 and not torch.equal(
                    ids[rows], torch.arange(b, device=ids.device)):
                # B rows that are not the batch in order: two calls, so that a counter around
                # the model (which reads a batch of B rows as the batch) attributes them alike
                f = torch.cat([scalar_output(self.model, qs[:1]),
                               scalar_output(self.model, qs[1:])]).to(q.dtype)
            else:
                f = scalar_output(self.model, qs).to(q.dtype)
            out = out.index_put((rows,), f)
            self.forwards.index_add_(0, ids[rows], torch.ones_like(rows))
            if self.track_best:
                self.best.offer(qs.detach(), is_adversarial(f.detach(), self.f_x[ids[rows]]),
                                ids[rows])
        self.refused.index_add_(0, ids[~ok], torch.ones_like(ids[~ok]))
        return out

    def _nested(self) -> bool:
        """The model is itself a counter begun on the same originals (compared once per pair
        of originals: again only where either counter was begun anew or a batch of originals
        was changed in place since)."""
        inner = self.model
        if not isinstance(inner, PropagationCounter) or inner.x is None:
            return False
        seen = self._nested_seen
        key = (_version_of(inner.x), _version_of(self.x))
        if (seen is None or seen[0] is not inner.x or seen[1] is not self.x
                or seen[2] != key or None in key):
            self._nested_seen = (inner.x, self.x, key)
            self._nested_same = (inner.x.shape == self.x.shape
                                 and bool(torch.equal(inner.x, self.x)))
        return self._nested_same

    def _frozen(self, ids: torch.Tensor) -> torch.Tensor:
        f = self.f_x[ids]
        return torch.zeros_like(f) if self.refused_output == "zero" else f

    def result(self, method: str = "best seen") -> ClosestResult:
        """The closest adversarial query seen per sample, verified by a forward pass of the
        unwrapped model (:func:`randadv.attacks.verify.verified_adversarial`; not counted)."""
        x_adv, success, f_adv, bound = verified_adversarial(self.model, self.x, self.best.point,
                                                            self.f_x, self.box)
        dist = lp_norm(x_adv - self.x, self.norm)
        dist = torch.where(success, dist, torch.full_like(dist, float("inf")))
        return ClosestResult(x_adv=x_adv, distance=dist, success=success, f_x=self.f_x,
                             f_adv=f_adv, norm=self.norm, exact_region=torch.zeros_like(success),
                             method=method, rounding_bound=bound, propagations=self.used.clone())


def check_budget(budget: float | None) -> float:
    """A budget of propagations per sample: None -> inf, else an integer >= 1.

    Paper:
        Cina et al. 2024 (AttackBench), Section 3.

    Arguments:
        budget: None or a number >= 1.

    Returns:
        The budget as a float (inf for None).

    Example:
        >>> from randadv.attacks.budget import check_budget
        >>> check_budget(None), check_budget(100)
        (inf, 100.0)
    """
    if budget is None:
        return math.inf
    if isinstance(budget, bool) or not isinstance(budget, (int, float)) or not (
            budget == math.inf or (float(budget).is_integer() and budget >= 1)):
        raise InvalidInputError(f"budget must be None or an integer >= 1 (propagations per "
                                f"sample), got {budget!r}")
    return float(budget)


class ChargedStack:
    """A :class:`~randadv.protocol.PiecewiseLinearStack` whose
    ``value_and_grad`` (explicit backpropagation through the model's own matrices: no model
    call) is charged to a :class:`PropagationCounter` as 1 forward + 1 backward per row; rows
    with no budget left get the counter's refused output and a zero gradient.

    Paper:
        Cina et al. 2024 (AttackBench), Section 3 (propagations counted per sample).

    Arguments:
        stack: the model's piecewise-linear stack (:func:`randadv.attacks.as_piecewise_linear`).
        counter: the :class:`PropagationCounter` charged.

    Example:
        >>> import torch
        >>> from randadv.nets import RandomMLP
        >>> from randadv.attacks import as_piecewise_linear
        >>> from randadv.attacks.budget import ChargedStack, PropagationCounter
        >>> net, x = RandomMLP([5, 8], seed=0), torch.rand(3, 5)
        >>> counter = PropagationCounter(net, budget=20)
        >>> counter.begin(x)
        >>> f, g = ChargedStack(as_piecewise_linear(net), counter).value_and_grad(x)
        >>> counter.used.tolist(), torch.allclose(f, net(x), atol=1e-6)
        ([2, 2, 2], True)
    """

    def __init__(self, stack, counter: PropagationCounter) -> None:
        self.stack, self.counter = stack, counter

    def __getattr__(self, name: str):
        return getattr(self.stack, name)

    def value_and_grad(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        c = self.counter
        ok = c.charge(x, 1, 1)
        ids = c.sample_of(x)
        f = c._frozen(ids).to(x.dtype).clone()
        g = torch.zeros_like(x)
        rows = torch.nonzero(ok).flatten()
        if rows.numel():
            fr, gr = self.stack.value_and_grad(x[rows])
            f[rows], g[rows] = fr.to(x.dtype), gr.to(x.dtype)
            if c.track_best:
                c.best.offer(x[rows], is_adversarial(fr, c.f_x[ids[rows]]), ids[rows])
        return f, g


# propagations per sample kept back for the final verification of a budgeted attack of randadv
# (:func:`randadv.attacks.min_norm.finalize`): the candidate in its batch and alone (2), and one
# further push of the ladder (2); the rounding bound comes from f and grad f kept with the point
VERIFY_RESERVE = 4
"""Propagations per sample an attack keeps back from its budget for the final verification.

Paper:
    Cina et al. 2024 (AttackBench), Section 3 (every query counts against the budget).

Example:
    >>> from randadv.attacks.budget import VERIFY_RESERVE
    >>> VERIFY_RESERVE
    4
"""


def budgeted(model: nn.Module, x: torch.Tensor, norm: str, bounds, budget: float | None,
             keep_graph: bool = False
             ) -> tuple[PropagationCounter, str, tuple | None, torch.Tensor]:
    """:func:`randadv.attacks.min_norm.prepare` for a budgeted attack: ``(counter, norm, box,
    f(x))`` with the model wrapped in a :class:`PropagationCounter` for x (no limit where
    ``budget`` is None) that has counted the forward pass of f(x). With ``keep_graph`` that
    pass records autograd and the counter keeps it (``counter.start_graph``, see
    :meth:`PropagationCounter.gradient_at_x`): a gradient at x then costs one backward, not a
    forward and a backward.

    Paper:
        Cina et al. 2024 (AttackBench), Section 3 (attacks compared at equal budgets).

    Arguments:
        model: the scalar-output model; x: the originals (B, ...); norm: ``"l1"``, ``"l2"`` or
        ``"linf"``; bounds: the input box or None; budget: propagations per sample or None;
        keep_graph: keep the autograd graph of the f(x) pass (models with one).

    Returns:
        ``(counter, norm, box, f_x)``.

    Example:
        >>> import torch
        >>> from randadv.nets import RandomMLP
        >>> from randadv.attacks.budget import budgeted
        >>> net, x = RandomMLP([5, 8], seed=0), torch.rand(3, 5)
        >>> counter, norm, box, f_x = budgeted(net, x, "l2", None, 50)
        >>> counter.used.tolist(), torch.allclose(f_x, net(x))   # f(x) counted once
        ([1, 1, 1], True)
    """
    budget = check_budget(budget)
    xg = x.detach().requires_grad_(True) if keep_graph else x
    norm, box, f_out = prepare(model, xg, norm, bounds, graph=keep_graph)
    f_x = f_out.detach()
    # the attribution of any counter around the model (a batch of B rows is the batch), so
    # that the counts agree with it
    counter = PropagationCounter(model, budget, None, norm, track_best=False, refused="zero")
    counter.begin(x.detach(), f_x, charge=1)
    if keep_graph and f_out.requires_grad:
        counter.start_graph = (xg, f_out)
    return counter, norm, box, f_x


def steps_within(budget: float, per_step: int, fixed: int, least: int = 1) -> int:
    """The iterations an attack of ``per_step`` propagations per iteration can take within
    ``budget`` after ``fixed`` (its start and verification), at least ``least``.

    Paper:
        Cina et al. 2024 (AttackBench), Section 3.

    Arguments:
        budget: propagations per sample; per_step: propagations per iteration; fixed: the
        propagations outside the iterations; least: the fewest iterations returned.

    Returns:
        The number of iterations.

    Example:
        >>> from randadv.attacks.budget import steps_within
        >>> steps_within(100, 2, 10), steps_within(5, 2, 10)
        (45, 1)
    """
    return max(least, int((budget - fixed) // per_step))


__all__ = ["VERIFY_RESERVE", "ChargedStack", "PropagationCounter", "budgeted", "check_budget",
           "steps_within"]
