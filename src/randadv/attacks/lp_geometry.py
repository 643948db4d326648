"""l_p geometry shared by the minimum-norm attacks, batched over the first dimension.

The norms themselves (:func:`lp_norm`, :func:`dual_norm`) are :mod:`randadv.protocol.norms`'s,
re-exported here. The steepest unit-l_p direction, projections onto l_p balls (l1: Duchi,
Shalev-Shwartz, Singer, Chandra 2008) and the minimal-l_p step onto a hyperplane inside a box.
The last one is the core of DeepFool (Moosavi-Dezfooli et al. 2016) and FAB (Croce & Hein 2020)
for a binary model: min ||delta||_p s.t. g . delta = gap, lo <= x + delta <= hi. It is solved
exactly by water-filling over sorted breakpoints (l2, linf) and by the greedy fractional-knapsack
order (l1).
"""

from __future__ import annotations

import torch

from randadv.protocol.norms import check_norm, dual_norm, lp_norm

__all__ = ["check_norm", "dual_norm", "hyperplane_step", "lp_norm", "project_ball",
           "random_in_ball", "steepest"]


def _flat(t: torch.Tensor) -> torch.Tensor:
    return t.reshape(t.shape[0], -1)


def steepest(g: torch.Tensor, norm: str) -> torch.Tensor:
    """The unit-l_p direction v maximising g . v (so g . v = ||g||_dual); 0 where g = 0.

    Paper:
        none (utility: l_p geometry of the minimum-norm attacks).

    Arguments:
        g: rows (B, ...); norm: the l_p norm of v.

    Returns:
        The unit directions, the shape of ``g``.

    Example:
        >>> import torch
        >>> from randadv.attacks.lp_geometry import steepest
        >>> steepest(torch.tensor([[3.0, -4.0]]), "linf").tolist()   # sign(g)
        [[1.0, -1.0]]
    """
    gf = _flat(g)
    if norm == "l2":
        v = gf / gf.norm(dim=1, keepdim=True).clamp_min(torch.finfo(g.dtype).tiny)
    elif norm == "linf":
        v = torch.sign(gf)
    else:
        i = gf.abs().argmax(1, keepdim=True)
        v = torch.zeros_like(gf).scatter_(1, i, torch.sign(gf.gather(1, i)))
    return v.reshape(g.shape)


def project_ball(delta: torch.Tensor, radius: torch.Tensor, norm: str) -> torch.Tensor:
    """Euclidean projection of every row onto the l_p ball of radius ``radius`` (B,).

    Paper:
        none (utility: l_p geometry of the minimum-norm attacks).

    Arguments:
        delta: rows (B, ...); radius: (B,) radii; norm: the l_p norm.

    Returns:
        The projected rows.

    Example:
        >>> import torch
        >>> from randadv.attacks.lp_geometry import project_ball
        >>> project_ball(torch.tensor([[3.0, -4.0]]), torch.tensor([1.0]), "linf").tolist()
        [[1.0, -1.0]]
    """
    d = _flat(delta)
    r = radius.to(d.dtype).reshape(-1, 1)
    if norm == "linf":
        out = torch.maximum(torch.minimum(d, r), -r)
    elif norm == "l2":
        n = d.norm(dim=1, keepdim=True)
        out = d * torch.clamp(r / n.clamp_min(torch.finfo(d.dtype).tiny), max=1.0)
    else:
        # Duchi et al. (2008), Fig. 1: soft threshold at theta from the sorted magnitudes
        a = d.abs()
        inside = a.sum(1, keepdim=True) <= r
        u, _ = torch.sort(a, dim=1, descending=True)
        css = torch.cumsum(u, 1) - r
        k = torch.arange(1, d.shape[1] + 1, device=d.device, dtype=d.dtype)
        cond = u - css / k > 0
        rho = (cond.to(torch.int64) * torch.arange(d.shape[1], device=d.device)).amax(1,
                                                                                    keepdim=True)
        theta = css.gather(1, rho) / (rho + 1).to(d.dtype)
        shrunk = torch.sign(d) * torch.clamp(a - theta, min=0.0)
        out = torch.where(inside, d, shrunk)
    return out.reshape(delta.shape)


def random_in_ball(shape: tuple[int, ...], radius: torch.Tensor, norm: str,
                   generator: torch.Generator, dtype: torch.dtype,
                   device: torch.device) -> torch.Tensor:
    """Random points of the l_p balls of radii ``radius`` (B,): uniform direction (Gaussian for
    l2, Laplace for l1, uniform cube for linf) scaled by ``radius * U^(1/n)``.

    Paper:
        none (utility: random starts of the minimum-norm attacks).

    Arguments:
        shape: (B, ...) of the result; radius: (B,) radii; norm: the l_p norm; generator: the
        random source; dtype, device: of the result.

    Returns:
        The (B, ...) points.

    Example:
        >>> import torch
        >>> from randadv.attacks.lp_geometry import lp_norm, random_in_ball
        >>> r = torch.tensor([0.5, 2.0])
        >>> p = random_in_ball((2, 10), r, "l1", torch.Generator().manual_seed(0), torch.float64,
        ...                    torch.device("cpu"))
        >>> bool((lp_norm(p, "l1") <= r).all())
        True
    """
    b = shape[0]
    n = 1
    for s in shape[1:]:
        n *= s
    if norm == "linf":
        z = torch.rand(shape, generator=generator, dtype=dtype, device=device) * 2 - 1
        return z * radius.to(dtype).reshape((-1,) + (1,) * (len(shape) - 1))
    z = torch.randn(shape, generator=generator, dtype=dtype, device=device)
    if norm == "l1":
        z = torch.sign(z) * (-torch.log(torch.rand(shape, generator=generator, dtype=dtype,
                                                   device=device).clamp_min(1e-30)))
    z = z / lp_norm(z, norm).clamp_min(torch.finfo(dtype).tiny).reshape(
        (-1,) + (1,) * (len(shape) - 1))
    u = torch.rand(b, generator=generator, dtype=dtype, device=device) ** (1.0 / n)
    return z * (radius.to(dtype) * u).reshape((-1,) + (1,) * (len(shape) - 1))


def hyperplane_step(g: torch.Tensor, gap: torch.Tensor, norm: str,
                    lower: torch.Tensor | None = None, upper: torch.Tensor | None = None
                    ) -> torch.Tensor:
    """The minimal-l_p ``delta`` with ``g . delta = gap`` (rows), optionally within
    ``lower <= delta <= upper`` (``lower <= 0 <= upper``; the box minus the current point).

    Without a box: ``delta = gap / ||g||_dual * steepest(g)``. With a box the problem is
    min ||u||_p over ``sum_i a_i u_i = |gap|``, ``0 <= u_i <= cap_i`` with ``a = |g|``,
    ``u_i = sign(gap g_i) delta_i``: l2 gives ``u = min(tau a, cap)``, linf ``u = min(tau, cap)``
    (tau from the sorted breakpoints), l1 fills the largest ``a_i`` first. Where the box cannot
    reach the hyperplane the step saturates every coordinate (the closest the box allows).
    Rows with ``g = 0`` get ``delta = 0``.

    Paper:
        none (utility: the projection step of DeepFool / FMN / FAB onto a linearised boundary).

    Arguments:
        g: the rows' normals (B, ...); gap: (B,) the required ``g . delta``; norm: the l_p norm;
        lower, upper: optional box on ``delta``.

    Returns:
        ``delta`` of the shape of ``g``.

    Example:
        >>> import torch
        >>> from randadv.attacks.lp_geometry import hyperplane_step
        >>> hyperplane_step(torch.tensor([[3.0, 4.0]]), torch.tensor([5.0]), "l2").tolist()
        [[0.6000000238418579, 0.800000011920929]]
    """
    shape = g.shape
    gf = _flat(g)
    gap = gap.to(gf.dtype).reshape(-1, 1)
    tiny = torch.finfo(gf.dtype).tiny
    if lower is None and upper is None:
        gd = dual_norm(gf, norm).reshape(-1, 1)
        # gap / gd first would overflow to inf where g = 0 (then inf * 0 = NaN)
        scale = torch.where(gd > 0, gap / gd.clamp_min(tiny), torch.zeros_like(gap))
        return (scale * _flat(steepest(gf, norm))).reshape(shape)
    lo = _flat(lower).expand_as(gf) if lower is not None else torch.full_like(gf, -torch.inf)
    hi = _flat(upper).expand_as(gf) if upper is not None else torch.full_like(gf, torch.inf)
    direction = torch.sign(gap) * torch.sign(gf)          # the sign each coordinate moves
    cap = torch.where(direction > 0, hi, -lo).clamp_min(0.0)
    cap = torch.where(direction == 0, torch.zeros_like(cap), cap)
    a = gf.abs()
    need = gap.abs()
    if norm == "l1":
        order = torch.argsort(a, dim=1, descending=True)
        a_s, cap_s = a.gather(1, order), cap.gather(1, order)
        fill = torch.where(cap_s > 0, a_s * cap_s, torch.zeros_like(a_s))
        before = torch.cumsum(fill, 1) - fill
        rest = (need - before).clamp_min(0.0)
        u_s = torch.minimum(cap_s, rest / a_s.clamp_min(tiny))
        u_s = torch.where(a_s > 0, u_s, torch.zeros_like(u_s))
        u = torch.zeros_like(u_s).scatter_(1, order, u_s)
    else:
        w = a if norm == "l2" else torch.ones_like(a)
        w = torch.where(a > 0, w, torch.zeros_like(w))
        # breakpoint of coordinate i: tau_i = cap_i / w_i (inf when uncapped or w_i = 0)
        bp = torch.where(w > 0, cap / w.clamp_min(tiny), torch.full_like(w, torch.inf))
        bp_s, order = torch.sort(bp, dim=1)
        aw_s = (a * w).gather(1, order)
        acap_s = torch.where(torch.isfinite(bp_s), (a * cap).gather(1, order),
                             torch.zeros_like(bp_s))
        # F(tau) = sum_{bp_j <= tau} a_j cap_j + tau * sum_{bp_j > tau} a_j w_j
        full = torch.cumsum(acap_s, 1)                      # saturated through j
        slope_after = aw_s.sum(1, keepdim=True) - torch.cumsum(aw_s, 1)
        f_at = full + torch.where(torch.isfinite(bp_s), bp_s, torch.zeros_like(bp_s)) \
            * slope_after
        reach = torch.isfinite(bp_s) & (f_at >= need)
        k = torch.argmax(reach.to(torch.int8), dim=1, keepdim=True)   # first breakpoint reached
        any_reach = reach.any(1, keepdim=True)
        # on the segment before breakpoint k: F(tau) = full_{k-1} + tau * slope_{k-1}
        full_prev = torch.where(k > 0, full.gather(1, (k - 1).clamp_min(0)),
                                torch.zeros_like(need))
        slope_prev = aw_s.sum(1, keepdim=True) - torch.where(
            k > 0, torch.cumsum(aw_s, 1).gather(1, (k - 1).clamp_min(0)),
            torch.zeros_like(need))
        n_fin = torch.isfinite(bp_s).sum(1, keepdim=True)
        # not reached at any finite breakpoint: the last segment (after every finite one)
        full_last = torch.where(n_fin > 0, full.gather(1, (n_fin - 1).clamp_min(0)),
                                torch.zeros_like(need))
        slope_last = aw_s.sum(1, keepdim=True) - torch.where(
            n_fin > 0, torch.cumsum(aw_s, 1).gather(1, (n_fin - 1).clamp_min(0)),
            torch.zeros_like(need))
        tau = torch.where(any_reach, (need - full_prev) / slope_prev.clamp_min(tiny),
                          torch.where(slope_last > 0,
                                      (need - full_last) / slope_last.clamp_min(tiny),
                                      torch.full_like(need, torch.inf)))
        u = torch.minimum(tau * w, cap)
        u = torch.where(w > 0, u, torch.zeros_like(u))
    return (direction * u).reshape(shape)
