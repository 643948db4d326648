"""Local linearity: how far from x the gradient of a network stays close to grad f(x).

Bartlett, Bubeck, Cherapanamjeri (2021), Section 1, eq. (1): a single gradient step finds an
adversarial example near x as soon as

    for all v with ||v|| <~ |f(x)| / ||grad f(x)||:  ||grad f(x) - grad f(x + v)|| << ||grad f(x)||,

because |f(x+u) - f(x) - <u, grad f(x)>| <= ||u|| sup_{||v|| <= ||u||} ||grad f(x) - grad f(x+v)||.
The proof (Section 2.4, Lemmas 2.3-2.8) shows that for random ReLU networks this holds in a ball of
radius R ~ sqrt(d_min) / polylog around x (||x|| = sqrt(d)), d_min the narrowest layer
(the bottleneck).

:func:`max_relative_gradient_change` estimates, for each radius r,

    Delta(r) = sup_{||v|| <= r} ||grad f(x + v) - grad f(x)|| / ||grad f(x)||

from below, and :func:`linearity_radius` the largest r with Delta(r) < eps.

Search (per input and radius): ``n_directions`` points uniform on the sphere of radius r, plus
the two gradient directions +-r grad f(x) / ||grad f(x)||; from the best of them, ``ascent_steps``
steps of projected, normalised ascent (step alpha r, alpha halved on a row after a step that does
not improve) on a *smoothed surrogate*. For ReLU networks grad f is piecewise constant, so the
true objective has zero derivative almost everywhere; the surrogate replaces each ReLU-like
activation phi by phi_tau(z) = b z + (a - b) tau softplus(z / tau) (a, b its slopes), whose gradient
gate sigmoid(z / tau) is smooth. The temperature tau_l of layer l is ``smoothing`` times the r.m.s.
change of that layer's pre-activations between x and the current x + v, so the surrogate "sees"
the units the ball can flip. Models whose structure randadv cannot read use their own
(autograd, second-order) derivative, exact for smooth models. Every candidate is scored with the
model's true gradient, so the returned value is attained at a returned feasible point: a lower
bound on Delta(r). A running maximum over the (increasing) radii makes it monotone in r.
All randomness comes from generators seeded by ``(seed, ...)``; the global RNG is not used.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from randadv.attacks.checks import check_attack_input, check_positive, scalar_output
from randadv.attacks.single_step import value_and_grad
from randadv.errors import InvalidInputError
from randadv.nets.mlp import RandomMLP
from randadv.nets.seeding import generator
from randadv.protocol.piecewise import PiecewiseLinearStack, as_piecewise_linear


@dataclass
class GradientChangeResult:
    """Result of :func:`max_relative_gradient_change` for B inputs and R radii.

    Attributes:
        radii: (R,) the radii, increasing.
        change: (B, R) largest ||grad f(x+v) - grad f(x)|| / ||grad f(x)|| found with
            ||v|| <= radii[j] (non-decreasing along j).
        random_change: (B, R) the same over the random directions alone (no ascent, no running
            maximum): what a random perturbation of norm r does.
        perturbation: (B, R, d) a v attaining ``change`` (||v|| <= radii[j]).
        grad_norm: (B,) ||grad f(x)||.
    """

    radii: torch.Tensor
    change: torch.Tensor
    random_change: torch.Tensor
    perturbation: torch.Tensor
    grad_norm: torch.Tensor


@dataclass
class LinearityRadiusResult:
    """Result of :func:`linearity_radius` for B inputs.

    Attributes:
        radius: (B,) largest radius searched at which the change found stayed below eps
            (0 where even ``r_min`` changes it by eps; ``r_max`` where censored).
        upper: (B,) smallest radius at which a change >= eps was found (inf where none).
        censored: (B,) no change >= eps found up to ``r_max``.
        eps: the fraction.
        grad_norm: (B,) ||grad f(x)||.
    """

    radius: torch.Tensor
    upper: torch.Tensor
    censored: torch.Tensor
    eps: float
    grad_norm: torch.Tensor


# --------------------------------------------------------------------------- helpers
def _grads(model: nn.Module, p: torch.Tensor, batch_size: int) -> torch.Tensor:
    """grad f at the rows of p (N, d), in chunks of ``batch_size``."""
    out = [value_and_grad(model, p[i:i + batch_size])[1] for i in range(0, p.shape[0], batch_size)]
    return torch.cat(out)


def _rel_change(model: nn.Module, x: torch.Tensor, g0: torch.Tensor, g0n: torch.Tensor,
                v: torch.Tensor, batch_size: int) -> torch.Tensor:
    """||grad f(x + v) - g0|| / ||g0|| for v of shape (B, m, d) -> (B, m)."""
    b, m, d = v.shape
    g = _grads(model, (x[:, None, :] + v).reshape(b * m, d), batch_size).reshape(b, m, d)
    return (g - g0[:, None, :]).norm(dim=2) / g0n[:, None]


def _stack_preacts(stack: PiecewiseLinearStack, p: torch.Tensor) -> list[torch.Tensor]:
    zs, h = [], p
    for layer, bias in zip(stack.maps, stack.biases, strict=True):
        z = layer(h)
        if bias is not None:
            z = z + bias
        zs.append(z)
        h = torch.where(z > 0, stack.slope_pos * z, stack.slope_neg * z)
    return zs


def _smoothed_output(stack: PiecewiseLinearStack, p: torch.Tensor,
                     taus: Sequence[torch.Tensor]) -> torch.Tensor:
    """f_tau(p): the stack with every phi replaced by b z + (a - b) tau softplus(z / tau)."""
    a, b = stack.slope_pos, stack.slope_neg
    h = p
    for layer, bias, tau in zip(stack.maps, stack.biases, taus, strict=True):
        z = layer(h)
        if bias is not None:
            z = z + bias
        h = b * z + (a - b) * tau * F.softplus(z / tau)
    return h @ stack.out_w + stack.out_b


def _layer_temperatures(stack: PiecewiseLinearStack, x: torch.Tensor, r: torch.Tensor,
                        smoothing: float, keys: tuple) -> list[torch.Tensor]:
    """tau_l = smoothing * r * (r.m.s. over units j of ||grad_x z_lj(x)||), per row (B, 1).

    ||grad_x z_lj|| is estimated by propagating a few Gaussian tangents e ~ N(0, I_d) through the
    linear region of x: E ((J_l e)_j)^2 = ||grad_x z_lj||^2. r ||grad_x z_lj|| is the largest change
    of z_lj over the ball, so the surrogate's gates are soft on the units the ball can flip."""
    b, d = x.shape
    n_probe = 4
    e = torch.randn(n_probe, b, d, generator=generator(*keys, "probe"), dtype=torch.float64)
    h, dh = x, e.to(x.dtype)
    taus = []
    for layer, bias in zip(stack.maps, stack.biases, strict=True):
        z = layer(h)
        if bias is not None:
            z = z + bias
        dz = layer(dh)
        rms = dz.pow(2).mean(dim=(0, 2)).sqrt()[:, None]               # (B, 1)
        floor = 1e-6 * z.abs().mean(dim=1, keepdim=True) + 1e-30
        taus.append((smoothing * r[:, None] * rms).clamp_min(floor))
        slope = torch.where(z > 0, z.new_tensor(stack.slope_pos), z.new_tensor(stack.slope_neg))
        h, dh = slope * z, slope * dz
    return taus


def _surrogate_ascent_direction(model: nn.Module, stack: PiecewiseLinearStack | None,
                                taus: list[torch.Tensor] | None, x: torch.Tensor,
                                v: torch.Tensor, g0: torch.Tensor) -> torch.Tensor:
    """d/dv ||grad f_tau(x + v) - g0||^2, shape (B, d) (see the module docstring)."""
    with torch.enable_grad():
        vv = v.detach().clone().requires_grad_(True)
        p = x + vv
        if stack is not None:
            out = _smoothed_output(stack, p, taus)
        else:
            out = scalar_output(model, p)
        (g,) = torch.autograd.grad(out.sum(), p, create_graph=True)
        obj = (g - g0).pow(2).sum()
        if not obj.requires_grad:       # second derivative identically zero (e.g. linear model)
            return torch.zeros_like(v)
        (s,) = torch.autograd.grad(obj, vv, allow_unused=True)
    return torch.zeros_like(v) if s is None else s.detach()


def _project_ball(v: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
    n = v.norm(dim=-1, keepdim=True)
    return v * torch.clamp(r.view(-1, *([1] * (v.dim() - 1))) / n.clamp_min(1e-300), max=1.0)


def _search(model: nn.Module, stack: PiecewiseLinearStack | None, x: torch.Tensor,
            g0: torch.Tensor, g0n: torch.Tensor, r: torch.Tensor, n_directions: int,
            ascent_steps: int, smoothing: float, keys: tuple, batch_size: int
            ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Best relative change with ||v|| <= r[i] per row: (best (B,), v_best (B, d),
    best over random directions (B,))."""
    b, d = x.shape
    rr = r.view(b, 1, 1)
    u = torch.randn(b, n_directions, d, generator=generator(*keys), dtype=torch.float64)
    u = (u / u.norm(dim=2, keepdim=True)).to(x.dtype)
    gdir = (g0 / g0n[:, None])[:, None, :]
    cand = torch.cat([u, gdir, -gdir], dim=1) * rr
    ch = _rel_change(model, x, g0, g0n, cand, batch_size)
    rand_best = ch[:, :n_directions].amax(dim=1)
    best, idx = ch.max(dim=1)
    v = cand[torch.arange(b), idx]
    alpha = torch.full((b,), 0.5, dtype=x.dtype)
    taus = (_layer_temperatures(stack, x, r, smoothing, keys)
            if stack is not None and ascent_steps > 0 else None)
    for _ in range(ascent_steps):
        s = _surrogate_ascent_direction(model, stack, taus, x, v, g0)
        sn = s.norm(dim=1, keepdim=True)
        if not bool((sn > 0).any()):
            break
        step = torch.where(sn > 0, s / sn.clamp_min(1e-300), torch.zeros_like(s))
        v_new = _project_ball(v + (alpha * r)[:, None] * step, r)
        ch_new = _rel_change(model, x, g0, g0n, v_new[:, None, :], batch_size)[:, 0]
        better = ch_new > best
        v = torch.where(better[:, None], v_new, v)
        best = torch.where(better, ch_new, best)
        alpha = torch.where(better, alpha, alpha / 2)
    return best, v, rand_best


def _prepare(model: nn.Module, x: torch.Tensor):
    if not isinstance(model, nn.Module):
        raise InvalidInputError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    single = isinstance(x, torch.Tensor) and x.dim() == 1
    x = check_attack_input(x.unsqueeze(0) if single else x).detach()
    if x.dim() != 2:
        raise InvalidInputError(f"x must have shape (B, d) or (d,), got {tuple(x.shape)}")
    if isinstance(model, RandomMLP):
        x = x.to(model.dtype)
    g0 = value_and_grad(model, x)[1]
    g0n = g0.norm(dim=1)
    if bool((g0n == 0).any()):
        raise InvalidInputError(f"grad f(x) = 0 at {int((g0n == 0).sum())} input(s): the "
                                "relative gradient change is undefined")
    return x, g0, g0n, single, as_piecewise_linear(model)


def _check_search_args(n_directions: int, ascent_steps: int, smoothing: float,
                       batch_size: int) -> None:
    for name, val, lo in (("n_directions", n_directions, 1), ("ascent_steps", ascent_steps, 0),
                          ("batch_size", batch_size, 1)):
        if isinstance(val, bool) or not isinstance(val, int) or val < lo:
            raise InvalidInputError(f"{name} must be an integer >= {lo}, got {val!r}")
    check_positive(smoothing, "smoothing")


# --------------------------------------------------------------------------- public API
def max_relative_gradient_change(model: nn.Module, x: torch.Tensor,
                                 radii: Sequence[float] | torch.Tensor, *,
                                 n_directions: int = 16, ascent_steps: int = 4,
                                 smoothing: float = 0.25, seed: int = 0,
                                 batch_size: int = 4096) -> GradientChangeResult:
    """Largest relative gradient change found within each radius (Bartlett et al. 2021, eq. (1)).

    Arguments:
        model: a scalar-output model (randadv's RandomMLP / DeepReLUNet, an ``nn.Sequential``
            ReLU MLP, or any module treating the rows of a batch independently).
        x: inputs (B, d) or one input (d,).
        radii: increasing positive radii r_1 < ... < r_R.
        n_directions: random points on each sphere ||v|| = r.
        ascent_steps: projected ascent steps on the smoothed surrogate (0: random search only).
        smoothing: surrogate temperature as a fraction of the pre-activation change (see module
            docstring).
        seed: seed of the random directions.
        batch_size: gradient evaluations per batch.

    Returns:
        :class:`GradientChangeResult` (B = 1 fields for a 1-D x keep their batch axis).

    Paper:
        Bartlett et al. 2021, eq. (1).

    Example:
        >>> import torch
        >>> from randadv.nets import DeepReLUNet
        >>> from randadv.attacks import max_relative_gradient_change
        >>> net = DeepReLUNet([20, 30], seed=0)
        >>> res = max_relative_gradient_change(net, torch.randn(2, 20), [0.1, 1.0, 10.0],
        ...                                    n_directions=4, ascent_steps=0)
        >>> bool((res.change[:, 1:] >= res.change[:, :-1]).all())   # a running maximum over r
        True
    """
    _check_search_args(n_directions, ascent_steps, smoothing, batch_size)
    r = torch.as_tensor(radii, dtype=torch.float64).reshape(-1)
    if r.numel() == 0 or not bool(torch.isfinite(r).all()) or bool((r <= 0).any()):
        raise InvalidInputError(f"radii must be finite and > 0, got {radii!r}")
    if r.numel() > 1 and not bool((r[1:] > r[:-1]).all()):
        raise InvalidInputError(f"radii must be strictly increasing, got {radii!r}")
    x, g0, g0n, _, stack = _prepare(model, x)
    b, d = x.shape
    n_r = r.numel()
    change = torch.empty(b, n_r, dtype=x.dtype)
    rand = torch.empty(b, n_r, dtype=x.dtype)
    pert = torch.empty(b, n_r, d, dtype=x.dtype)
    for j in range(n_r):
        rj = torch.full((b,), float(r[j]), dtype=x.dtype)
        best, v, rb = _search(model, stack, x, g0, g0n, rj, n_directions, ascent_steps,
                              smoothing, (seed, "linearity", "radius", float(r[j])), batch_size)
        if j > 0:       # a point feasible at r_{j-1} is feasible at r_j
            keep = change[:, j - 1] > best
            best = torch.where(keep, change[:, j - 1], best)
            v = torch.where(keep[:, None], pert[:, j - 1], v)
        change[:, j], pert[:, j], rand[:, j] = best, v, rb
    return GradientChangeResult(radii=r.to(x.dtype), change=change, random_change=rand,
                                perturbation=pert, grad_norm=g0n)


def linearity_radius(model: nn.Module, x: torch.Tensor, eps: float, r_max: float, *,
                     r_min: float | None = None, n_scan: int = 10, bisect_steps: int = 5,
                     n_directions: int = 16, ascent_steps: int = 4, smoothing: float = 0.25,
                     seed: int = 0, batch_size: int = 4096) -> LinearityRadiusResult:
    """The radius within which the gradient changes by less than a fraction ``eps``:
    ``R_eps(x) = sup {r : Delta(r) < eps}`` (Bartlett et al. 2021, eq. (1); Section 2.4 proves
    ``R >~ sqrt(d_min) / polylog`` for ||x|| = sqrt(d)).

    A geometric scan of ``n_scan`` radii from ``r_min`` (default ``r_max / 1000``) to ``r_max``
    (:func:`max_relative_gradient_change`, running maximum) brackets each row's crossing of eps;
    ``bisect_steps`` geometric bisections (fresh random directions at each midpoint) narrow it.
    Since Delta is estimated from below, the radius is an estimate from above of the true one.

    Paper:
        Bartlett et al. 2021, eq. (1) and Section 2.4.

    Arguments:
        model: a scalar-output model; x: inputs (B, d) or (d,); eps: the fraction; r_max,
        r_min: the radii scanned; n_scan: radii of the scan; bisect_steps: bisections;
        n_directions, ascent_steps, smoothing, seed, batch_size: as in
        :func:`max_relative_gradient_change`.

    Returns:
        A ``LinearityRadiusResult`` (the radius per row and the evidence behind it).

    Example:
        >>> import torch
        >>> from torch import nn
        >>> from randadv.attacks import linearity_radius
        >>> lin = nn.Sequential(nn.Linear(4, 1), nn.Flatten(0))   # a linear map: never changes
        >>> r = linearity_radius(lin, torch.ones(2, 4), eps=0.1, r_max=10.0, n_scan=3,
        ...                      bisect_steps=1, n_directions=2, ascent_steps=0)
        >>> r.radius.tolist()
        [10.0, 10.0]
    """
    eps = check_positive(eps, "eps")
    r_max = check_positive(r_max, "r_max")
    r_min = r_max / 1000.0 if r_min is None else check_positive(r_min, "r_min")
    if not r_min < r_max:
        raise InvalidInputError(f"r_min must be < r_max, got {r_min} and {r_max}")
    if isinstance(n_scan, bool) or not isinstance(n_scan, int) or n_scan < 2:
        raise InvalidInputError(f"n_scan must be an integer >= 2, got {n_scan!r}")
    if isinstance(bisect_steps, bool) or not isinstance(bisect_steps, int) or bisect_steps < 0:
        raise InvalidInputError(f"bisect_steps must be an integer >= 0, got {bisect_steps!r}")
    _check_search_args(n_directions, ascent_steps, smoothing, batch_size)
    grid = torch.logspace(math.log10(r_min), math.log10(r_max), n_scan, dtype=torch.float64)
    scan = max_relative_gradient_change(model, x, grid, n_directions=n_directions,
                                        ascent_steps=ascent_steps, smoothing=smoothing,
                                        seed=seed, batch_size=batch_size)
    x, g0, g0n, _, stack = _prepare(model, x)
    b = x.shape[0]
    over = scan.change >= eps                                   # (B, R), monotone in R
    first = torch.where(over.any(dim=1), over.float().argmax(dim=1), torch.full((b,), n_scan))
    g = grid.to(x.dtype)
    inf = torch.tensor(float("inf"), dtype=x.dtype)
    hi = torch.where(first < n_scan, g[first.clamp(max=n_scan - 1)], inf)
    lo = torch.where(first > 0, g[(first - 1).clamp(min=0)], torch.zeros((), dtype=x.dtype))
    censored = first == n_scan
    for step in range(bisect_steps):
        active = ~censored
        if not bool(active.any()):
            break
        mid = torch.where(lo > 0, (lo * hi).sqrt(), hi / 2)
        mid = torch.where(active, mid, g[-1])
        best, _, _ = _search(model, stack, x, g0, g0n, mid, n_directions, ascent_steps,
                             smoothing, (seed, "linearity", "bisect", step), batch_size)
        up = active & (best >= eps)
        hi = torch.where(up, mid, hi)
        lo = torch.where(active & ~up, mid, lo)
    radius = torch.where(censored, g[-1], lo)
    return LinearityRadiusResult(radius=radius, upper=hi, censored=censored, eps=eps,
                                 grad_norm=g0n)
