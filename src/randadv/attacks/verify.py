"""The one place where an attack's candidate becomes a reported adversarial example.

Every example randadv reports passes through :func:`verified_flip_along`: it is re-evaluated by a
forward pass of the model, and counts as adversarial only if the sign of that output differs from
sign f(x). At an exact boundary point f = 0, so the candidate step is pushed past the boundary by
the smallest relative margin (from ``128 eps`` up to 1e-3) that the forward pass confirms.
"""

from __future__ import annotations

import torch
from torch import nn

from randadv.attacks.checks import scalar_output


def _margins(dtype: torch.dtype) -> list[float]:
    eps = torch.finfo(dtype).eps
    out, m = [], 128 * eps
    while m < 1e-3:
        out.append(m)
        m *= 8
    return out + [1e-3]


@torch.no_grad()
def verified_flip_along(model: nn.Module, x: torch.Tensor, direction: torch.Tensor,
                        t_boundary: torch.Tensor, f_x: torch.Tensor
                        ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Push each row from ``x + t_boundary * direction`` just past the boundary and check it.

    Returns ``(t, flipped, x_adv, f_adv)``: ``t`` the verified step (NaN where not flipped),
    ``flipped`` from a forward pass at ``x_adv``, ``x_adv`` (= x where not flipped), ``f_adv``.
    """
    b = x.shape[0]
    view = (-1,) + (1,) * (x.dim() - 1)
    t = torch.full((b,), float("nan"), dtype=x.dtype, device=x.device)
    flipped = torch.zeros(b, dtype=torch.bool, device=x.device)
    x_adv = x.clone()
    f_adv = f_x.clone().to(x.dtype)
    todo = torch.nonzero(~torch.isnan(t_boundary)).flatten()
    sign0 = torch.sign(f_x)
    for m in _margins(x.dtype):
        if todo.numel() == 0:
            break
        tt = t_boundary[todo].to(x.dtype) * (1 + m)
        cand = x[todo] + tt.view(view) * direction[todo]
        fc = scalar_output(model, cand).to(x.dtype)
        ok = torch.sign(fc) * sign0[todo] < 0
        rows = todo[ok]
        t[rows], flipped[rows], x_adv[rows], f_adv[rows] = tt[ok], True, cand[ok], fc[ok]
        todo = todo[~ok]
    return t, flipped, x_adv, f_adv
