"""Fast minimum-norm (FMN) attack for binary (scalar-output) models in l1, l2 and l-infinity.

Paper:
    Pintor, Roli, Brendel, Biggio, "Fast minimum-norm adversarial attacks through adaptive
    norm constraints", NeurIPS 2021 (Algorithm 1).

Distance: l1, l2, linf.

The loss is the signed output ``L = sign f(x) * f(x + delta)`` (adversarial iff L < 0). Each step
adapts the radius eps of an l_p ball (shrink by ``1 - gamma`` when adversarial, grow by
``1 + gamma`` otherwise; before the first adversarial point, the linear estimate
``||delta|| + L / ||grad L||_dual``), takes a normalised descent step on L of length
``alpha * eps`` along the steepest l_p direction, and projects onto the ball and the box. gamma
and alpha decay by cosine annealing (the paper's schedule; the step is relative to eps here so
that one setting fits every input scale).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from randadv.attacks.lp_geometry import dual_norm, lp_norm, project_ball, steepest
from randadv.attacks.min_norm import (
    Best,
    Box,
    ClosestResult,
    adversarial,
    clip,
    finalize,
    prepare,
    value_and_grad,
)


def _cosine(k: int, steps: int, start: float, end: float) -> float:
    return end + (start - end) * (1 + math.cos(math.pi * k / max(steps, 1))) / 2


def fmn_candidates(model: nn.Module, x: torch.Tensor, f_x: torch.Tensor, norm: str,
                   box: Box | None, best: Best, starts: torch.Tensor, steps: int = 100,
                   gamma: float = 0.05, gamma_final: float = 0.001, alpha: float = 1.0,
                   alpha_final: float = 0.01, rows: torch.Tensor | None = None) -> None:
    """Run FMN from ``starts`` (S*B, ...), offering adversarial iterates to ``best`` (at row
    ``rows[k]``, default the input)."""
    b = x.shape[0]
    src = torch.arange(starts.shape[0], device=x.device) % b
    rows = src if rows is None else rows
    xo, so = x[src], torch.sign(f_x[src])
    view = (-1,) + (1,) * (x.dim() - 1)
    delta = starts - xo
    eps = torch.full((starts.shape[0],), float("inf"), dtype=x.dtype, device=x.device)
    seen = torch.zeros(starts.shape[0], dtype=torch.bool, device=x.device)
    for k in range(steps):
        y = clip(xo + delta, box)
        f, g = value_and_grad(model, y)
        loss, gl = so * f, so.view(view) * g
        adv = adversarial(f, f_x[src])
        best.offer(y, adv, rows)
        seen |= adv
        gm = gamma and _cosine(k, steps, gamma, gamma_final)
        am = _cosine(k, steps, alpha, alpha_final)
        dn = lp_norm(delta, norm)
        lin = dn + loss.abs() / dual_norm(gl, norm).clamp_min(torch.finfo(x.dtype).tiny)
        eps = torch.where(adv, torch.minimum(eps, dn) * (1 - gm),
                          torch.where(seen, eps * (1 + gm), lin))
        step = -steepest(gl, norm) * (am * eps).view(view)
        delta = project_ball(delta + step, eps, norm)
        delta = clip(xo + delta, box) - xo
    y = clip(xo + delta, box)
    with torch.no_grad():
        f, _ = value_and_grad(model, y)
    best.offer(y, adversarial(f, f_x[src]), rows)


def fmn(model: nn.Module, x: torch.Tensor, norm: str = "l2", bounds: tuple | None = None, *,
        steps: int = 100, gamma: float = 0.05, gamma_final: float = 0.001, alpha: float = 1.0,
        alpha_final: float = 0.01) -> ClosestResult:
    """FMN (Pintor et al., NeurIPS 2021) for a scalar-output model.

    Distance: l1, l2, linf (``norm``).

    Arguments:
        model: torch module returning one scalar f per input; the decision is sign f.
        x: inputs (B, ...), floating point.
        norm: ``"l1"``, ``"l2"`` or ``"linf"``.
        bounds: optional box ``(lo, hi)``.
        steps: iterations.
        gamma, gamma_final: radius adaptation factor, cosine-annealed.
        alpha, alpha_final: step length relative to the radius, cosine-annealed.

    Shape:
        x: (B, ...); returns a :class:`ClosestResult`.

    Example::

        >>> net = torch.nn.Sequential(torch.nn.Linear(10, 32), torch.nn.ReLU(),
        ...                           torch.nn.Linear(32, 1))
        >>> res = fmn(net, torch.randn(4, 10), norm="l2", steps=50)
    """
    norm, box, f_x = prepare(model, x, norm, bounds)
    best = Best(x, norm)
    fmn_candidates(model, x, f_x, norm, box, best, x, steps, gamma, gamma_final, alpha,
                   alpha_final)
    return finalize(model, x, best, f_x, norm, box)
