"""The one place where an attack's candidate becomes a reported adversarial example.

Every example randadv reports passes through :func:`verified_flip_along` or
:func:`verified_adversarial`: it is re-evaluated by a forward pass of the model, and counts as
adversarial only if sign f(x_adv) != sign f(x) with |f(x_adv)| above a bound on the forward
pass's rounding error at that point (:func:`rounding_bound`)::

    B(x') = ROUNDING_FACTOR * eps * (|f(x')| + sum_i |x'_i df/dx_i(x')|)

The sum is the first-order change of f when every input coordinate is perturbed by a relative
eps, the size of the terms the first layer sums (for a bias-free ReLU net f = x . grad f, so it
is at least |f|, and it does not vanish near the boundary as |f| does). Measured max over
batches of 64, 7 and 1 of |f_float32 - f_float64| / (eps * that scale) with the same weights:
1.6 (two-layer ReLU/tanh nets, d = 50..1000, k = 100..1e5), 0.74 / 0.96 / 0.83 (the zoo's fc,
lenet, resnet at s = 12); ``ROUNDING_FACTOR = 32`` leaves a factor 20 over the worst seen.
A candidate within the bound is pushed further past the boundary: along the segment from x the
push needed is about B / |slope|, estimated by the secant |f(x)| / t, so the relative pushes tried
are ``m0 * 4^j`` with ``m0 = max(2 B / |f(x)|, 128 eps)`` (j = 0..7, or on until 128 eps 4^j
reaches 1e-3 where that takes more rungs); for a point next to the boundary the first push is of
the order B / ||grad f||^2 in the step, not a relative margin of eta.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from randadv.attacks.checks import scalar_output, value_and_grad
from randadv.errors import ModelOutputError
from randadv.protocol.adversarial import verified_flip
from randadv.protocol.rounding import ROUNDING_FACTOR, rounding_bound_of


def _push_levels(dtype: torch.dtype) -> int:
    """Rungs of the push ladder: 8, or as many as take 128 eps to 1e-3 (a model whose rounding
    exceeds the bound, e.g. batch-dependent outputs, is still pushed as far as before)."""
    eps = torch.finfo(dtype).eps
    return max(8, int(math.ceil(math.log(1e-3 / (128 * eps), 4))) + 1)


def rounding_bound(model: nn.Module, points: torch.Tensor) -> torch.Tensor:
    """Bound on the rounding error of ``model(points)`` per row (see the module docstring):
    :func:`rounding_bound_of` with one forward and backward pass (:func:`value_and_grad`; a
    model whose output has no autograd graph gets the bound of |f| alone)."""
    try:
        f, g = value_and_grad(model, points)
    except ModelOutputError:
        f, g = scalar_output(model, points), torch.zeros_like(points)
    return rounding_bound_of(f, g, points)


def push_margins(f_x: torch.Tensor, bound: torch.Tensor) -> torch.Tensor:
    """The relative pushes tried per row, (B, J): ``m0 * 4^j`` with
    ``m0 = max(2 bound / |f(x)|, 128 eps)`` (the secant estimate of the push that takes |f| past
    ``bound``, see the module docstring)."""
    fin = torch.finfo(bound.dtype)
    m0 = torch.clamp(2 * bound / f_x.to(bound.dtype).abs().clamp_min(fin.tiny), min=128 * fin.eps)
    j = torch.arange(_push_levels(bound.dtype), dtype=bound.dtype, device=bound.device)
    return m0[:, None] * 4.0 ** j


def _clip(points: torch.Tensor, bounds: tuple[torch.Tensor, torch.Tensor] | None) -> torch.Tensor:
    return points if bounds is None else torch.minimum(torch.maximum(points, bounds[0]),
                                                       bounds[1])


@torch.no_grad()
def verified_flip_along(model: nn.Module, x: torch.Tensor, direction: torch.Tensor,
                        t_boundary: torch.Tensor, f_x: torch.Tensor,
                        bounds: tuple[torch.Tensor, torch.Tensor] | None = None,
                        give_up: float | None = None, bound: torch.Tensor | None = None
                        ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Push each row from ``x + t_boundary * direction`` just past the boundary and check it.

    Returns ``(t, flipped, x_adv, f_adv)``: ``t`` the verified step (NaN where not flipped),
    ``flipped`` from a forward pass at ``x_adv``, ``x_adv`` (= x where not flipped), ``f_adv``.
    With ``bounds = (lo, hi)`` (tensors broadcastable to x) each pushed point is clipped to the
    box before the forward pass, so ``x_adv`` always lies in it (then ``x_adv`` may differ from
    ``x + t * direction`` on the coordinates the push would take out of the box).

    ``give_up``: for estimated (not exact) boundary steps, rows whose first pushed point is
    still on x's side with ``|f| > give_up * |f(x)|`` are dropped instead of pushed further:
    if f falls about linearly from f(x) at t = 0 to 0 at ``t_boundary``, the largest push
    (1e-3 of t) moves f by about 1e-3 |f(x)|, so with ``give_up = 1e-2`` the dropped rows are
    ones no push would flip (one forward pass instead of four for a failed estimate).

    ``bound``: the rounding bound per row where the caller has it (e.g. from f and grad f at x,
    :func:`rounding_bound_of`); by default :func:`rounding_bound` at the boundary points.
    """
    b = x.shape[0]
    view = (-1,) + (1,) * (x.dim() - 1)
    todo = torch.nonzero(~torch.isnan(t_boundary)).flatten()
    if bound is None:
        bound = torch.full((b,), float("nan"), dtype=x.dtype, device=x.device)
        if todo.numel():
            at = x[todo] + t_boundary[todo].to(x.dtype).view(view) * direction[todo]
            bound[todo] = rounding_bound(model, _clip(at, bounds))

    def point(rows: torch.Tensor, tt: torch.Tensor) -> torch.Tensor:
        return _clip(x[rows] + tt.view(view) * direction[rows], bounds)

    t, flipped, f_adv = verified_flip_on_ray(
        lambda rows, tt: scalar_output(model, point(rows, tt)), t_boundary, f_x,
        bound.to(x.dtype), give_up=give_up)
    x_adv = x.clone()
    rows = torch.nonzero(flipped).flatten()
    if rows.numel():
        x_adv[rows] = point(rows, t[rows])     # elementwise: the very points evaluated
    return t, flipped, x_adv, f_adv


@torch.no_grad()
def verified_flip_on_ray(values: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
                         t_boundary: torch.Tensor, f_x: torch.Tensor, bound: torch.Tensor,
                         give_up: float | None = None
                         ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The push ladder of :func:`verified_flip_along` on any ray t -> h(t) with h(0) = f(x).

    ``values(rows, t)``: h of the given rows at times ``t`` (one per row), evaluated the way the
    caller's flip is to be checked (a forward pass of the model for :func:`verified_flip_along`;
    the float64 sum over the k units of a sampled two-layer ray for
    :func:`randadv.attacks.smallest_flip_step_on_ray`). A row counts as flipped at the first
    ``t = t_boundary (1 + m0 4^j)`` (:func:`push_margins`) where ``sign h(t) != sign f(x)`` with
    ``|h(t)| > bound``. Returns ``(t, flipped, f_adv)`` (t NaN and f_adv = f(x) where not
    flipped); ``bound`` and ``give_up`` as in :func:`verified_flip_along`.
    """
    dt = bound.dtype
    b = t_boundary.shape[0]
    t = torch.full((b,), float("nan"), dtype=dt, device=bound.device)
    flipped = torch.zeros(b, dtype=torch.bool, device=bound.device)
    f0 = f_x.to(dt)
    f_adv = f0.clone()
    todo = torch.nonzero(~torch.isnan(t_boundary)).flatten()
    ladder = push_margins(f_x, bound)
    for j in range(ladder.shape[1]):
        if todo.numel() == 0:
            break
        tt = t_boundary[todo].to(dt) * (1 + ladder[todo, j])
        fc = values(todo, tt).to(dt)
        ok = verified_flip(fc, f0[todo], bound[todo])
        rows = todo[ok]
        t[rows], flipped[rows], f_adv[rows] = tt[ok], True, fc[ok]
        keep = ~ok
        if give_up is not None:
            keep &= fc.abs() <= give_up * f0[todo].abs()
        todo = todo[keep]
    return t, flipped, f_adv


def unit_sum_rounding_bound(out_w: torch.Tensor, pre: torch.Tensor, act) -> torch.Tensor:
    """The module docstring's bound for h = sum_l a_l psi(y_l) computed from its k
    pre-activations ``pre`` (B, k) and output weights ``out_w`` ((k,) or (B, k)), per row::

        ROUNDING_FACTOR * eps * (|h| + sum_l |a_l| (|psi(y_l)| + |y_l psi'(y_l)|))

    The y_l play the role of the inputs x_i (a relative eps on each moves h by
    |a_l y_l psi'(y_l)|), and sum_l |a_l psi(y_l)| bounds the summation's own rounding (at most
    eps log2 k times it for a pairwise sum, log2 k < 32 for k < 4e9); eps of ``pre``'s dtype.
    """
    eps = torch.finfo(pre.dtype).eps
    h_terms = out_w * act(pre)
    scale = (h_terms.abs() + (out_w * pre * act.derivative(pre)).abs()).sum(1)
    return ROUNDING_FACTOR * eps * (h_terms.sum(1).abs() + scale)


@torch.no_grad()
def verified_adversarial(model: nn.Module, x: torch.Tensor, x_adv: torch.Tensor,
                         f_x: torch.Tensor, bounds: tuple[torch.Tensor, torch.Tensor] | None = None,
                         bound: torch.Tensor | None = None, skip_candidate: bool = False
                         ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Make each candidate ``x_adv`` (B, ...) a checked adversarial example of ``x``.

    A candidate on (or within rounding of) the boundary is pushed along ``x_adv - x`` by the
    smallest relative margin ``m = m0 4^j`` (module docstring: ``m0 = 2 B / |f(x)|``, at least
    ``128 eps``) for which the forward pass gives ``sign f(x + (1 + m)(x_adv - x)) != sign f(x)``
    with |f| above the rounding bound B at the candidate (:func:`rounding_bound`; f = 0 never
    counts); the pushed point is clipped to ``bounds = (lo, hi)`` (tensors broadcastable to x).
    Candidates already clearly adversarial are kept as they are.

    The flip must hold in two evaluations: the B points as one batch and each point alone
    (float32 matrix products round differently with the batch size; measured on the zoo fc
    net: f = -1.3e-7 alone, +1.0e-7 in a batch of 2, at an x with f(x) = 8e-4, far below the
    net's output scale); a point that fails either is pushed to the next margin.

    Paper:
        none (utility: the one verification rule of every reported adversarial example; the
        bound is derived and measured in the module docstring).

    Arguments:
        model: torch module returning one scalar f per input.
        x: (B, ...) the original inputs.
        x_adv: (B, ...) the candidates (rows with NaN / inf, or with f(x) = 0, fail).
        f_x: (B,) f(x).
        bounds: optional box ``(lo, hi)`` (tensors broadcastable to x) the pushed points are
            clipped to.
        bound: the rounding bound per row where the caller has it (e.g. from f and grad f kept
            with the candidate, :func:`rounding_bound_of`); by default :func:`rounding_bound`
            at the candidates (one forward and backward pass).
        skip_candidate: start at the ladder's first push, not at the candidate as it is (a
            candidate that another evaluation rounded back within its bound).

    Returns:
        ``(x_adv, success, f_adv, bound)``: ``x_adv`` (= x where no margin flips it),
        ``success`` from the forward pass, ``f_adv`` the output there (in the batch
        evaluation), ``bound`` the rounding bound the flip was checked against (NaN for rows
        with no finite candidate), so ``|f_adv| / bound`` is the verified margin.

    Example:
        >>> import torch
        >>> from randadv.attacks import verified_adversarial
        >>> net = torch.nn.Linear(2, 1)                    # f(x) = 3 x1 + 4 x2 - 5
        >>> net.weight.data, net.bias.data = torch.tensor([[3.0, 4.0]]), torch.tensor([-5.0])
        >>> x = torch.zeros(2, 2)                          # f(x) = -5
        >>> cand = torch.tensor([[1.0, 0.5], [0.5, 0.25]])  # on the boundary; halfway to it
        >>> x_adv, success, f_adv, bound = verified_adversarial(net, x, cand, net(x)[:, 0])
        >>> success.tolist(), bool(f_adv[0] > bound[0])
        ([True, False], True)
        >>> round(float(x_adv[0].norm()), 3), x_adv[1].tolist()   # pushed just across; x
        (1.118, [0.0, 0.0])
    """
    b = x.shape[0]
    success = torch.zeros(b, dtype=torch.bool, device=x.device)
    out = x.clone()
    f_adv = f_x.clone().to(x.dtype)
    f0 = f_x.to(x.dtype)
    cand = x_adv.to(x.dtype)
    live = torch.isfinite(_flat_rows(cand)).all(1) & (torch.sign(f_x) != 0)
    given = bound
    bound = torch.full((b,), float("nan"), dtype=x.dtype, device=x.device)
    if given is not None:
        bound = torch.where(live, given.to(x.dtype), bound)
    need = live & torch.isnan(bound)
    if bool(need.any()):
        bound[need] = rounding_bound(model, _clip(cand[need], bounds))
    # column 0: the candidate as it is; then the push ladder
    ladder = torch.cat([torch.zeros(b, 1, dtype=x.dtype, device=x.device),
                        push_margins(f0, bound)], 1)
    n_levels = ladder.shape[1]
    # next push level to try per row (n_levels: none left)
    level = torch.full((b,), n_levels, dtype=torch.long, device=x.device)
    level[live] = 1 if skip_candidate else 0
    while True:
        todo = torch.nonzero((level < n_levels) & ~success).flatten()
        if todo.numel() == 0:
            break
        m = ladder[todo, level[todo]].view((-1,) + (1,) * (x.dim() - 1))
        c = x[todo] + (1 + m) * (cand[todo] - x[todo])
        c = _clip(torch.where(m == 0, cand[todo], c), bounds)
        fc = scalar_output(model, c).to(x.dtype)
        ok = verified_flip(fc, f0[todo], bound[todo])
        new = todo[ok]
        out[new], success[new], f_adv[new] = c[ok], True, fc[ok]
        level[todo[~ok]] += 1
        # confirmation: every accepted point in one batch, and each new one alone
        acc = torch.nonzero(success).flatten()
        if acc.numel() == 0:
            continue
        if torch.equal(acc, todo) and bool(ok.all()):
            f_all = fc                        # that batch was exactly the accepted points
        else:
            f_all = scalar_output(model, out[acc]).to(x.dtype)
        bad = ~verified_flip(f_all, f0[acc], bound[acc])
        if new.numel():
            # a batch of one was already an evaluation alone
            f_one = fc[ok] if todo.numel() == 1 else torch.cat(
                [scalar_output(model, out[i:i + 1]) for i in new.tolist()]).to(x.dtype)
            bad[torch.isin(acc, new)] |= ~verified_flip(f_one, f0[new], bound[new])
        rows = acc[bad]
        success[rows] = False
        out[rows], f_adv[rows] = x[rows], f0[rows]
        level[rows] += 1
        f_adv[acc[~bad]] = f_all[~bad]
    return out, success, f_adv, bound


def _flat_rows(t: torch.Tensor) -> torch.Tensor:
    return t.reshape(t.shape[0], -1)


@torch.no_grad()
def verified_in_ball(model: nn.Module, x: torch.Tensor, x_adv: torch.Tensor, radius: float,
                     bounds: tuple[float, float] | None = None, rtol: float = 1e-5
                     ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Check budget-constrained candidates (PGD, ...) and evaluate them by a forward pass.

    A candidate must satisfy ||x_adv - x||_2 <= R (1 + rtol) and lie in ``bounds = (lo, hi)``;
    one that does not is replaced by ``x`` (a RuntimeWarning says how many).

    Paper:
        none (utility: the check of the budget-constrained PGD-l2 candidates of the
        lazy-training paper's Figure 4).

    Arguments:
        model: torch module returning one scalar f per input.
        x: (B, ...) the original inputs.
        x_adv: the candidates (reshaped to x's shape).
        radius: the l2 budget R.
        bounds: optional box ``(lo, hi)`` of two floats every coordinate must lie in.
        rtol: relative tolerance on the budget.

    Returns:
        ``(x_adv, f_x, f_adv, norm)``: the candidates (x where replaced), f at x and at them
        from forward passes, and ``norm = ||x_adv - x||_2`` (B,).

    Example:
        >>> import warnings
        >>> import torch
        >>> from randadv.attacks import verified_in_ball
        >>> net = torch.nn.Linear(2, 1)                    # f(x) = 3 x1 + 4 x2 - 5
        >>> net.weight.data, net.bias.data = torch.tensor([[3.0, 4.0]]), torch.tensor([-5.0])
        >>> x, cand = torch.zeros(2, 2), torch.tensor([[1.0, 0.5], [3.0, 0.0]])
        >>> with warnings.catch_warnings(record=True) as caught:
        ...     warnings.simplefilter("always")
        ...     x_adv, f_x, f_adv, norm = verified_in_ball(net, x, cand, radius=1.5)
        >>> [str(w.message) for w in caught]
        ['1 of 2 candidates violate the budget or the box: replaced by x']
        >>> x_adv[1].tolist(), f_adv.tolist(), [round(v, 4) for v in norm.tolist()]
        ([0.0, 0.0], [0.0, -5.0], [1.118, 0.0])
    """
    import warnings

    b = x.shape[0]
    cand = x_adv.to(x.dtype).reshape(x.shape).clone()
    norm = (cand - x).reshape(b, -1).norm(dim=1)
    bad = ~torch.isfinite(cand.reshape(b, -1)).all(dim=1) | (norm > radius * (1 + rtol))
    if bounds is not None:
        flat = cand.reshape(b, -1)
        bad |= (flat < bounds[0]).any(dim=1) | (flat > bounds[1]).any(dim=1)
    if bool(bad.any()):
        warnings.warn(f"{int(bad.sum())} of {b} candidates violate the budget or the box: "
                      "replaced by x", RuntimeWarning, stacklevel=2)
        cand[bad] = x[bad]
        norm[bad] = 0.0
    f_x = scalar_output(model, x).to(x.dtype)
    f_adv = scalar_output(model, cand).to(x.dtype)
    return cand, f_x, f_adv, norm
