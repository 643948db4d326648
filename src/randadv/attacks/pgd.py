"""Projected gradient descent in l2 (PGD-l2) for any model with a scalar output.

Madry et al. (ICLR 2018); the form used by "Adversarial Robustness is at Odds with Lazy
Training" (NeurIPS 2022), Algorithm 1, lines 3-6 and Appendix A: T_2 = 100 steps of size
alpha = 2.5 R / 100, each followed by the projection onto B_2(x, R) cap [0, 1]^d.

Each step moves along the *normalised* gradient of the margin loss -y f(x') (the usual l2 PGD
step; the logistic loss l(y f) has the same gradient direction since l' < 0, and the margin
does not saturate). The projection onto the intersection of the ball and the box is exact
(:func:`project_l2_box`). Every returned example is re-checked by a forward pass
(:func:`randadv.attacks.verify.verified_in_ball`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from randadv.attacks.checks import check_attack_input, check_positive, scalar_output
from randadv.attacks.verify import rounding_bound, verified_in_ball
from randadv.errors import InvalidInputError
from randadv.nets.seeding import generator

Bounds = tuple[float, float] | None


@dataclass
class PGDResult:
    """Result of :func:`pgd_l2` for B inputs.

    Attributes:
        x_adv: the examples (B, ...), inside B_2(x, R) and the box (checked).
        f_x, f_adv: model outputs at x and at x_adv (forward pass).
        success: y f(x_adv) < 0 with |f(x_adv)| above the forward pass's rounding bound there
            (:func:`randadv.attacks.verify.rounding_bound`; a clean misclassification counts
            when y f(x) < 0 already).
        robust: y f(x) > 0 and no success: no example in the checked ball was verified
            adversarial (a y f(x_adv) within rounding of 0 is not a verified flip).
        norm: ||x_adv - x||_2.

    Paper:
        Lazy training 2022 ("Adversarial Robustness is at Odds with Lazy Training", NeurIPS
        2022), Algorithm 1 and Figure 4 (robust accuracy under PGD-l2).

    Example:
        >>> import torch
        >>> from torch import nn
        >>> from randadv.attacks import pgd_l2
        >>> lin = nn.Sequential(nn.Linear(2, 1, bias=False), nn.Flatten(0))
        >>> with torch.no_grad():
        ...     _ = lin[0].weight.copy_(torch.tensor([[1.0, 0.0]]))
        >>> x, y = torch.tensor([[0.6, 0.5], [0.9, 0.5]]), torch.tensor([1.0, 1.0])
        >>> r = pgd_l2(lin, x, y, radius=0.7, bounds=None)   # f(x) = x_1: flipped iff x_1 < 0.7
        >>> r.success.tolist(), r.robust.tolist(), bool((r.norm <= 0.7 + 1e-6).all())
        ([True, False], [False, True], True)
    """

    x_adv: torch.Tensor
    f_x: torch.Tensor
    f_adv: torch.Tensor
    success: torch.Tensor
    robust: torch.Tensor
    norm: torch.Tensor

    def __len__(self) -> int:
        return int(self.x_adv.shape[0])

    @property
    def robust_accuracy(self) -> float:
        return float(self.robust.float().mean())


def _rows(t: torch.Tensor) -> torch.Tensor:
    return t.reshape(t.shape[0], -1)


def project_l2_box(z: torch.Tensor, center: torch.Tensor, radius: float | torch.Tensor,
                   bounds: Bounds = (0.0, 1.0), iters: int = 50) -> torch.Tensor:
    """Exact Euclidean projection of each row of ``z`` onto B_2(center, R) cap [lo, hi]^d.

    KKT: the projection is p(t) = clip(c + t (z - c), lo, hi) for the largest t in [0, 1]
    with ||p(t) - c|| <= R (||p(t) - c|| is non-decreasing in t when c lies in the box);
    t = 1 is the box projection. t is found by bisection (``iters`` halvings), keeping the
    feasible end, so the result is always inside both sets. Without ``bounds``: the ball
    projection. ``center`` must lie in the box.

    Paper:
        Lazy training 2022 ("Adversarial Robustness is at Odds with Lazy Training", NeurIPS
        2022), Algorithm 1 (the projection of the PGD step).

    Arguments:
        z: points (B, d); center: the ball centres (B, d), inside the box; radius: R (scalar
        or (B,)); bounds: ``(lo, hi)`` or None; iters: bisection halvings.

    Returns:
        The projections (B, d).

    Example:
        >>> import torch
        >>> from randadv.attacks import project_l2_box
        >>> p = project_l2_box(torch.tensor([[3.0, 0.5]]), torch.tensor([[0.5, 0.5]]), 1.0)
        >>> [round(v, 4) for v in p[0].tolist()]   # clipped to the box first: x_1 = 1
        [1.0, 0.5]
    """
    shape = z.shape
    z2, c2 = _rows(z), _rows(center)
    r = torch.as_tensor(radius, dtype=z.dtype, device=z.device).reshape(-1)
    r = r.expand(z2.shape[0]) if r.numel() == 1 else r
    if bounds is None:
        diff = z2 - c2
        nrm = diff.norm(dim=1)
        scale = torch.where(nrm > r, r / nrm.clamp_min(torch.finfo(z.dtype).tiny), 1.0)
        return (c2 + diff * scale[:, None]).reshape(shape)
    lo, hi = bounds
    p = z2.clamp(lo, hi)
    over = torch.nonzero((p - c2).norm(dim=1) > r).flatten()
    if over.numel():
        zo, co, ro = z2[over], c2[over], r[over]
        t_lo = torch.zeros(over.numel(), dtype=z.dtype, device=z.device)
        t_hi = torch.ones_like(t_lo)
        for _ in range(iters):
            t = (t_lo + t_hi) / 2
            ok = ((co + t[:, None] * (zo - co)).clamp(lo, hi) - co).norm(dim=1) <= ro
            t_lo = torch.where(ok, t, t_lo)
            t_hi = torch.where(ok, t_hi, t)
        p[over] = (co + t_lo[:, None] * (zo - co)).clamp(lo, hi)
    return p.reshape(shape)


def _random_start(x: torch.Tensor, radius: float, bounds: Bounds, seed: int) -> torch.Tensor:
    """x + a point uniform in B_2(0, R) (from ``generator(seed, "pgd-start")``), projected."""
    b, d = x.shape[0], _rows(x).shape[1]
    g = generator(seed, "pgd-start")
    u = torch.randn(b, d, generator=g, dtype=torch.float64)
    rad = torch.rand(b, generator=g, dtype=torch.float64) ** (1.0 / d) * radius
    u = (u * (rad / u.norm(dim=1))[:, None]).to(x.dtype).to(x.device).reshape(x.shape)
    return project_l2_box(x + u, x, radius, bounds)


def _pgd_batch(model: nn.Module, x: torch.Tensor, y: torch.Tensor, radius: float, steps: int,
               alpha: float, bounds: Bounds, start: torch.Tensor, keep: str) -> torch.Tensor:
    view = (-1,) + (1,) * (x.dim() - 1)
    xa = start.clone()
    best, best_margin = xa.clone(), torch.full((x.shape[0],), float("inf"), dtype=x.dtype,
                                               device=x.device)
    tiny = torch.finfo(x.dtype).tiny
    for _ in range(steps):
        with torch.enable_grad():
            xr = xa.detach().requires_grad_(True)
            margin = y * scalar_output(model, xr)
            (g,) = torch.autograd.grad(-margin.sum(), xr)
        with torch.no_grad():
            m = margin.detach()
            better = m < best_margin
            best[better], best_margin[better] = xa[better], m[better]
            gn = _rows(g).norm(dim=1).clamp_min(tiny).view(view)
            xa = project_l2_box(xa + alpha * g / gn, x, radius, bounds)
    if keep == "last":
        return xa
    with torch.no_grad():
        m = y * scalar_output(model, xa)
        better = m < best_margin
        best[better] = xa[better]
    return best


def pgd_l2(model: nn.Module, x: torch.Tensor, y: torch.Tensor, radius: float,
           steps: int = 100, step_size: float | None = None, bounds: Bounds = (0.0, 1.0),
           random_start: bool = False, seed: int = 0, keep: str = "best",
           batch_size: int = 4096) -> PGDResult:
    """PGD-l2 on the margin loss -y f(x'), Algorithm 1 lines 3-6 (Madry et al. 2018).

    Arguments:
        model: any torch module returning one scalar per input; y f(x) > 0 means correct.
        x: inputs (B, ...); y: labels (B,) in {-1, +1}.
        radius: the budget R = ||delta||.
        steps: T_2 (100 in the paper).
        step_size: alpha; default 2.5 R / steps (Appendix A: 2.5 R / 100 with T_2 = 100).
        bounds: the box (default [0, 1], pixels); None for no box.
        random_start: start at a point uniform in B_2(x, R) (seeded by ``seed``) instead of x
            (Algorithm 1 starts at x).
        seed: seed of the random start.
        keep: ``"best"`` returns the iterate of lowest margin (an attack), ``"last"`` the
            final iterate (adversarial training, Algorithm 1).
        batch_size: rows attacked together.

    Returns:
        :class:`PGDResult`, verified by :func:`randadv.attacks.verify.verified_in_ball`.

    Paper:
        Lazy training 2022 ("Adversarial Robustness is at Odds with Lazy Training", NeurIPS
        2022), Algorithm 1 (lines 3-6) and Appendix A.

    Example:
        >>> import torch
        >>> from randadv.nets import RandomMLP
        >>> from randadv.attacks import pgd_l2
        >>> net, x = RandomMLP([10, 32], seed=0), torch.rand(4, 10)
        >>> y = torch.sign(net(x))                  # correct labels
        >>> r = pgd_l2(net, x, y, radius=5.0, steps=20)
        >>> r.x_adv.shape, bool(((r.x_adv - x).norm(dim=1) <= 5.0 + 1e-5).all())
        (torch.Size([4, 10]), True)
    """
    x = check_attack_input(x).detach()
    radius = check_positive(radius, "radius")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        raise InvalidInputError(f"steps must be a non-negative int, got {steps!r}")
    if not isinstance(y, torch.Tensor) or y.shape != (x.shape[0],):
        raise InvalidInputError(f"y must be a tensor of shape ({x.shape[0]},)")
    if not bool(((y == 1) | (y == -1)).all()):
        raise InvalidInputError("labels y must be in {-1, +1}")
    if keep not in ("best", "last"):
        raise InvalidInputError(f"keep must be 'best' or 'last', got {keep!r}")
    if bounds is not None:
        lo, hi = float(bounds[0]), float(bounds[1])
        if not lo < hi:
            raise InvalidInputError(f"bounds must satisfy lo < hi, got {bounds}")
        if bool((x < lo).any() or (x > hi).any()):
            raise InvalidInputError(f"x must lie in the box [{lo}, {hi}]")
        bounds = (lo, hi)
    alpha = 2.5 * radius / max(steps, 1) if step_size is None else \
        check_positive(step_size, "step_size")
    y = y.to(x.dtype).to(x.device)
    start = _random_start(x, radius, bounds, seed) if random_start else x
    out = torch.empty_like(x)
    for i in range(0, x.shape[0], batch_size):
        sl = slice(i, i + batch_size)
        out[sl] = _pgd_batch(model, x[sl], y[sl], radius, steps, alpha, bounds, start[sl], keep)
    return verified_pgd(model, x, y, out, radius, bounds)


def verified_pgd(model: nn.Module, x: torch.Tensor, y: torch.Tensor, x_adv: torch.Tensor,
                 radius: float, bounds: Bounds) -> PGDResult:
    """Route candidates through the verification forward pass into a :class:`PGDResult`."""
    x_adv, f_x, f_adv, norm = verified_in_ball(model, x, x_adv, radius, bounds)
    margin_x, margin_adv = y * f_x, y * f_adv
    success = (margin_adv < 0) & (f_adv.abs() > rounding_bound(model, x_adv))
    return PGDResult(x_adv=x_adv, f_x=f_x, f_adv=f_adv, success=success,
                     robust=(margin_x > 0) & ~success, norm=norm)

