"""The one place where an attack's candidate becomes a reported adversarial example.

Every example randadv reports passes through :func:`verified_flip_along`: it is re-evaluated by a
forward pass of the model, and counts as adversarial only if the sign of that output differs from
sign f(x) by more than the forward pass's rounding: |f(x_adv)| > ``ROUNDING_GUARD`` eps |f(x)|
(eps of the dtype). The guard matters for conv nets in float32, whose outputs change by a few
eps |f(x)| with the batch a point is evaluated in (measured: 13 eps on a ResNet), so a point
closer than that to the boundary could flip back when evaluated again. At an exact boundary
point f = 0, so the candidate step is pushed past the boundary by the smallest relative margin
(from ``128 eps`` up to 1e-3) that the forward pass confirms; where f is linear along the step
the first margin already gives |f(x_adv)| = 128 eps |f(x)|.
"""

from __future__ import annotations

import torch
from torch import nn

from randadv.attacks.checks import scalar_output

ROUNDING_GUARD = 64


def clearly_flipped(f_adv: torch.Tensor, f_x: torch.Tensor) -> torch.Tensor:
    """sign f(x_adv) != sign f(x), with |f(x_adv)| above ``ROUNDING_GUARD`` eps |f(x)|."""
    eps = torch.finfo(f_adv.dtype).eps if f_adv.is_floating_point() else 0.0
    return (torch.sign(f_adv) * torch.sign(f_x) < 0) & (f_adv.abs() > ROUNDING_GUARD * eps
                                                        * f_x.abs())


def _margins(dtype: torch.dtype) -> list[float]:
    eps = torch.finfo(dtype).eps
    out, m = [], 128 * eps
    while m < 1e-3:
        out.append(m)
        m *= 8
    return out + [1e-3]


@torch.no_grad()
def verified_flip_along(model: nn.Module, x: torch.Tensor, direction: torch.Tensor,
                        t_boundary: torch.Tensor, f_x: torch.Tensor,
                        bounds: tuple[torch.Tensor, torch.Tensor] | None = None,
                        give_up: float | None = None
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
    """
    b = x.shape[0]
    view = (-1,) + (1,) * (x.dim() - 1)
    t = torch.full((b,), float("nan"), dtype=x.dtype, device=x.device)
    flipped = torch.zeros(b, dtype=torch.bool, device=x.device)
    x_adv = x.clone()
    f_adv = f_x.clone().to(x.dtype)
    todo = torch.nonzero(~torch.isnan(t_boundary)).flatten()
    for m in _margins(x.dtype):
        if todo.numel() == 0:
            break
        tt = t_boundary[todo].to(x.dtype) * (1 + m)
        cand = x[todo] + tt.view(view) * direction[todo]
        if bounds is not None:
            cand = torch.minimum(torch.maximum(cand, bounds[0]), bounds[1])
        fc = scalar_output(model, cand).to(x.dtype)
        ok = clearly_flipped(fc, f_x[todo].to(x.dtype))
        rows = todo[ok]
        t[rows], flipped[rows], x_adv[rows], f_adv[rows] = tt[ok], True, cand[ok], fc[ok]
        keep = ~ok
        if give_up is not None:
            keep &= fc.abs() <= give_up * f_x[todo].to(x.dtype).abs()
        todo = todo[keep]
    return t, flipped, x_adv, f_adv


@torch.no_grad()
def verified_adversarial(model: nn.Module, x: torch.Tensor, x_adv: torch.Tensor,
                         f_x: torch.Tensor, bounds: tuple[torch.Tensor, torch.Tensor] | None = None
                         ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Make each candidate ``x_adv`` (B, ...) a checked adversarial example of ``x``.

    A candidate on (or within rounding of) the boundary is pushed along ``x_adv - x`` by the
    smallest relative margin ``m`` (``128 eps`` of x's dtype, then x8 up to 1e-3) for which the
    forward pass gives ``sign f(x + (1 + m)(x_adv - x)) != sign f(x)`` with |f| above the
    rounding guard (:func:`clearly_flipped`; f = 0 never counts); the pushed point is clipped
    to ``bounds = (lo, hi)`` (tensors broadcastable to x).
    So a reported distance exceeds the candidate's by at most a relative 1e-3, usually ~1e-5
    (float32) or ~3e-14 (float64). Candidates already clearly adversarial are kept as they are.

    The flip must hold in two evaluations: the B points as one batch and each point alone
    (float32 matrix products round differently with the batch size; measured on the zoo fc
    net: f = -1.3e-7 alone, +1.0e-7 in a batch of 2, at an x with f(x) = 8e-4, far below the
    net's output scale); a point that fails either is pushed to the next margin.

    Returns ``(x_adv, success, f_adv)``: ``x_adv`` (= x where no margin flips it), ``success``
    from the forward pass, ``f_adv`` the output there (in the batch evaluation).
    """
    b = x.shape[0]
    success = torch.zeros(b, dtype=torch.bool, device=x.device)
    out = x.clone()
    f_adv = f_x.clone().to(x.dtype)
    f0 = f_x.to(x.dtype)
    cand = x_adv.to(x.dtype)
    margins = [0.0, *_margins(x.dtype)]
    # next margin to try per row (len(margins): none left)
    level = torch.full((b,), len(margins), dtype=torch.long, device=x.device)
    level[torch.isfinite(_flat_rows(cand)).all(1) & (torch.sign(f_x) != 0)] = 0
    while True:
        todo = torch.nonzero((level < len(margins)) & ~success).flatten()
        if todo.numel() == 0:
            break
        m = torch.as_tensor([margins[int(k)] for k in level[todo]], dtype=x.dtype,
                            device=x.device).view((-1,) + (1,) * (x.dim() - 1))
        c = x[todo] + (1 + m) * (cand[todo] - x[todo])
        c = torch.where(m == 0, cand[todo], c)
        if bounds is not None:
            c = torch.minimum(torch.maximum(c, bounds[0]), bounds[1])
        fc = scalar_output(model, c).to(x.dtype)
        ok = clearly_flipped(fc, f0[todo])
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
        bad = ~clearly_flipped(f_all, f0[acc])
        if new.numel():
            # a batch of one was already an evaluation alone
            f_one = fc[ok] if todo.numel() == 1 else torch.cat(
                [scalar_output(model, out[i:i + 1]) for i in new.tolist()]).to(x.dtype)
            bad[torch.isin(acc, new)] |= ~clearly_flipped(f_one, f0[new])
        rows = acc[bad]
        success[rows] = False
        out[rows], f_adv[rows] = x[rows], f0[rows]
        level[rows] += 1
        f_adv[acc[~bad]] = f_all[~bad]
    return out, success, f_adv


def _flat_rows(t: torch.Tensor) -> torch.Tensor:
    return t.reshape(t.shape[0], -1)


@torch.no_grad()
def verified_in_ball(model: nn.Module, x: torch.Tensor, x_adv: torch.Tensor, radius: float,
                     bounds: tuple[float, float] | None = None, rtol: float = 1e-5
                     ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Check budget-constrained candidates (PGD, ...) and evaluate them by a forward pass.

    A candidate must satisfy ||x_adv - x||_2 <= R (1 + rtol) and lie in ``bounds = (lo, hi)``;
    one that does not is replaced by ``x`` (a RuntimeWarning says how many). Returns
    ``(x_adv, f_x, f_adv, norm)`` with f from forward passes and ``norm = ||x_adv - x||``.
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
