"""First root of t -> h(t) = f(x + t u) for models with no known piecewise-linear structure.

Bracketing: h is evaluated on a uniform grid of ``n_grid`` points in (0, t_max], chunk by chunk,
until every row has changed sign; the first sign change brackets the first root up to the grid's
resolution (two roots closer than t_max / n_grid may be missed: the price of knowing nothing
about the model; randadv's ReLU networks and ReLU ``nn.Sequential`` models use the exact walk of
:mod:`randadv.attacks.piecewise_linear` instead). Refinement: safeguarded Newton from the left
end of the bracket, falling back to bisection. On a piecewise-linear model, Newton from a point
of the root's linear region lands exactly on the root; on a smooth one it converges
quadratically. Stops when |h| <= 1e-6 |h(left end)| after a Newton step or the bracket is below
``rtol`` relative.

Two ray representations: any torch model (autograd for h'), and a one-hidden-layer network with
pre-activations z + t c along the ray (O(k) per evaluation instead of O(k d)).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from randadv.nets.activations import Activation

BRACKET_ULPS = 4   # the narrowest bracket, in units of the dtype's eps (0: rtol alone)

Values = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
ValuesAndSlopes = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


@torch.no_grad()
def first_root_of(values: Values, values_and_slopes: ValuesAndSlopes, f0: torch.Tensor,
                  t_max: float, n_grid: int = 512, chunk: int = 16, rtol: float = 1e-9,
                  max_iter: int = 100) -> torch.Tensor:
    """First t in (0, t_max] where h changes sign relative to ``f0``; NaN where none was found.

    ``values(rows, t)``: h at times ``t`` of shape (len(rows), m) for the given rows;
    ``values_and_slopes(rows, t)``: h and h' at times ``t`` of shape (len(rows),).
    """
    b, dt, dev = f0.shape[0], f0.dtype, f0.device
    sign0 = torch.sign(f0)
    lo = torch.zeros(b, dtype=dt, device=dev)
    hi = torch.full((b,), float("nan"), dtype=dt, device=dev)
    f_lo = f0.clone()
    f_hi = torch.full_like(f_lo, float("nan"))
    grid = torch.linspace(0, t_max, n_grid + 1, dtype=dt, device=dev)[1:]
    todo = torch.arange(b, device=dev)
    for start in range(0, n_grid, chunk):
        if todo.numel() == 0:
            break
        ts = grid[start:start + chunk]
        vals = values(todo, ts.expand(todo.numel(), -1))
        changed = sign0[todo, None] * vals <= 0
        any_c = changed.any(1)
        j = torch.argmax(changed.to(torch.int8), dim=1)[any_c]
        rows = todo[any_c]
        hi[rows] = ts[j]
        f_hi[rows] = vals[any_c, j]
        prev_t = ts[torch.clamp(j - 1, min=0)]
        prev_v = vals[any_c, torch.clamp(j - 1, min=0)]
        lo[rows] = torch.where(j > 0, prev_t, lo[rows])
        f_lo[rows] = torch.where(j > 0, prev_v, f_lo[rows])
        rest = todo[~any_c]
        lo[rest], f_lo[rest] = ts[-1], vals[~any_c, -1]
        todo = rest
    root = torch.full((b,), float("nan"), dtype=dt, device=dev)
    idx = torch.nonzero(~torch.isnan(hi)).flatten()
    exact = f_hi[idx] == 0
    root[idx[exact]] = hi[idx[exact]]
    idx = idx[~exact]
    # a bracket cannot close below a few ulps of its end: stop there, not after max_iter
    rtol = max(rtol, BRACKET_ULPS * torch.finfo(dt).eps)
    a, bb, s0 = lo[idx], hi[idx], sign0[idx]
    bisect = torch.zeros(idx.numel(), dtype=torch.bool, device=dev)
    for _ in range(max_iter):
        if idx.numel() == 0:
            break
        fa, slope = values_and_slopes(idx, a)
        newton = a - fa / torch.where(slope == 0, 1.0, slope)
        ok = ~bisect & (slope != 0) & (newton > a) & (newton <= bb)
        cand = torch.where(ok, newton, 0.5 * (a + bb))
        fc = values(idx, cand[:, None])[:, 0]
        flipped = s0 * fc <= 0
        done = (fc == 0) | (ok & flipped & (fc.abs() <= 1e-6 * fa.abs()))
        bb = torch.where(flipped, cand, bb)
        a = torch.where(flipped, a, cand)
        done |= (bb - a) <= rtol * bb
        bisect = ok & flipped          # a Newton step past a kink: bisect next time
        root[idx[done]] = bb[done]
        keep = ~done
        idx, a, bb, s0, bisect = idx[keep], a[keep], bb[keep], s0[keep], bisect[keep]
    root[idx] = bb
    return root


def first_root_bracketed(model: nn.Module, x: torch.Tensor, u: torch.Tensor, f_x: torch.Tensor,
                         t_max: float, n_grid: int = 512, chunk: int = 16,
                         rtol: float = 1e-9) -> torch.Tensor:
    """:func:`first_root_of` for any torch model along x + t u (x, u of shape (B, ...))."""
    shape = x.shape[1:]

    def points(rows, t):
        n, m = t.shape
        p = x[rows, None] + t.reshape(n, m, *([1] * len(shape))) * u[rows, None]
        return p.reshape(n * m, *shape)

    def values(rows, t):
        return model(points(rows, t)).reshape(t.shape).to(x.dtype)

    def values_and_slopes(rows, t):
        with torch.enable_grad():
            p = points(rows, t[:, None]).detach().requires_grad_(True)
            out = model(p).reshape(-1)
            (g,) = torch.autograd.grad(out.sum(), p)
        slope = (g * u[rows]).reshape(len(rows), -1).sum(1)
        return out.detach().to(x.dtype), slope.to(x.dtype)

    return first_root_of(values, values_and_slopes, f_x.to(x.dtype), t_max, n_grid, chunk, rtol)


def first_root_one_hidden_layer(z: torch.Tensor, c: torch.Tensor, out_w: torch.Tensor,
                                out_b: float, act: Activation, t_max: float,
                                n_grid: int = 512, chunk: int = 16,
                                rtol: float = 1e-9) -> torch.Tensor:
    """:func:`first_root_of` for h(t) = out_w . psi(z + t c) + out_b (pre-activations z, c of
    shape (B, k)): each evaluation costs O(k) per row, no matrix product. ``out_w``: (k,), or
    (B, k) for one output layer per row; ``chunk`` grid points are evaluated at once, a
    (rows, chunk, k) tensor."""
    per_row = out_w.dim() == 2

    def dot(h, rows):
        if not per_row:
            return h @ out_w
        w = out_w[rows]
        return (h * (w[:, None, :] if h.dim() == 3 else w)).sum(-1)

    def values(rows, t):
        pre = z[rows, None, :] + t[:, :, None] * c[rows, None, :]
        return dot(act(pre), rows) + out_b

    def values_and_slopes(rows, t):
        pre = z[rows] + t[:, None] * c[rows]
        return dot(act(pre), rows) + out_b, dot(act.derivative(pre) * c[rows], rows)

    f0 = dot(act(z), torch.arange(z.shape[0], device=z.device)) + out_b
    return first_root_of(values, values_and_slopes, f0, t_max, n_grid, chunk, rtol)
