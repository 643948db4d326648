"""First root of t -> f(x + t u) for any differentiable torch model (no structure assumed).

Bracketing: f is evaluated on a uniform grid of ``n_grid`` points in (0, t_max], chunk by chunk,
until every row has changed sign; the first sign change brackets the first root up to the grid's
resolution (two roots closer than t_max / n_grid may be missed: this is the price of knowing
nothing about the model; randadv's own networks and ReLU ``nn.Sequential`` models use the exact
walk of :mod:`randadv.attacks.piecewise_linear` instead). Refinement: safeguarded Newton from the
left end of the bracket with the autograd directional derivative, falling back to bisection.
On a piecewise-linear model, Newton from a point of the root's linear region lands exactly on the
root; on a smooth model it converges quadratically. Tolerance: ``rtol`` relative in t.
"""

from __future__ import annotations

import torch
from torch import nn


def _values(model: nn.Module, x: torch.Tensor, u: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    out = model(x + t.view(-1, *([1] * (x.dim() - 1))) * u)
    return out.reshape(-1).to(x.dtype)


def _values_and_slopes(model, x, u, t):
    with torch.enable_grad():
        p = (x + t.view(-1, *([1] * (x.dim() - 1))) * u).detach().requires_grad_(True)
        out = model(p).reshape(-1)
        (g,) = torch.autograd.grad(out.sum(), p)
    return out.detach().to(x.dtype), (g * u).reshape(g.shape[0], -1).sum(1).to(x.dtype)


@torch.no_grad()
def first_root_bracketed(model: nn.Module, x: torch.Tensor, u: torch.Tensor, f_x: torch.Tensor,
                         t_max: float, n_grid: int = 512, chunk: int = 16, rtol: float = 1e-9,
                         max_iter: int = 100) -> torch.Tensor:
    """The first t in (0, t_max] with a sign change of f(x + t u) relative to ``f_x``; NaN where
    the grid found none. ``x``, ``u``: (B, ...)."""
    b = x.shape[0]
    sign0 = torch.sign(f_x)
    lo = torch.zeros(b, dtype=x.dtype, device=x.device)
    hi = torch.full((b,), float("nan"), dtype=x.dtype, device=x.device)
    f_lo = f_x.clone().to(x.dtype)
    f_hi = torch.full_like(f_lo, float("nan"))
    grid = torch.linspace(0, t_max, n_grid + 1, dtype=x.dtype, device=x.device)[1:]
    todo = torch.arange(b, device=x.device)
    for start in range(0, n_grid, chunk):
        if todo.numel() == 0:
            break
        ts = grid[start:start + chunk]
        m = ts.numel()
        xs = x[todo].repeat_interleave(m, 0)
        us = u[todo].repeat_interleave(m, 0)
        vals = _values(model, xs, us, ts.repeat(todo.numel())).view(-1, m)
        changed = sign0[todo, None] * vals <= 0
        any_c = changed.any(1)
        j = torch.argmax(changed.to(torch.int8), dim=1)
        rows = todo[any_c]
        jj = j[any_c]
        hi[rows] = ts[jj]
        f_hi[rows] = vals[any_c, jj]
        prev = torch.where(jj > 0, ts[torch.clamp(jj - 1, min=0)],
                           grid[start - 1] if start > 0 else torch.zeros((), dtype=x.dtype))
        lo[rows] = prev
        prev_vals = torch.where(jj > 0, vals[any_c, torch.clamp(jj - 1, min=0)], f_lo[rows])
        f_lo[rows] = prev_vals
        not_c = ~any_c
        if not_c.any():
            f_lo[todo[not_c]] = vals[not_c, -1]
            lo[todo[not_c]] = ts[-1]
        todo = todo[not_c]
    found = ~torch.isnan(hi)
    root = torch.full((b,), float("nan"), dtype=x.dtype, device=x.device)
    idx = torch.nonzero(found).flatten()
    exact = f_hi[idx] == 0
    root[idx[exact]] = hi[idx[exact]]
    idx = idx[~exact]
    a, bb, fa, fb = lo[idx], hi[idx], f_lo[idx], f_hi[idx]
    s0 = sign0[idx]
    bisect = torch.zeros(idx.numel(), dtype=torch.bool, device=x.device)
    for _ in range(max_iter):
        if idx.numel() == 0:
            break
        fa_now, slope = _values_and_slopes(model, x[idx], u[idx], a)
        newton = a - fa_now / torch.where(slope == 0, 1.0, slope)
        ok = ~bisect & (slope != 0) & (newton > a) & (newton <= bb)
        cand = torch.where(ok, newton, 0.5 * (a + bb))
        fc = _values(model, x[idx], u[idx], cand)
        zero = fc == 0
        flipped = (s0 * fc <= 0)
        bb = torch.where(flipped, cand, bb)
        fb = torch.where(flipped, fc, fb)
        a = torch.where(flipped, a, cand)
        fa = torch.where(flipped, fa, fc)
        # a Newton step that lands on the flipped side from a's linear region is the root
        done = zero | ((bb - a) <= rtol * bb) | (ok & flipped & (fc.abs() <= 1e-6 * fa.abs()))
        # a Newton step overshooting a kink: bisect next time
        bisect = ok & flipped
        root[idx[done]] = bb[done]
        keep = ~done
        idx, a, bb, fa, fb, s0 = idx[keep], a[keep], bb[keep], fa[keep], fb[keep], s0[keep]
        bisect = bisect[keep]
    if idx.numel():
        root[idx] = bb
    return root
