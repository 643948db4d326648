"""Smallest flipping steps with a per-input search bound (shared by the multi-layer experiments).

The exact search (the layer sweep of :mod:`randadv.attacks.piecewise_linear`) enumerates every
linear region the ray crosses, and a ray that never flips is swept to the end of its search
bound. The bound is therefore set per input to ``max(max_eta, max_rel ||x|| / ||grad f(x)||)``:
every step with |eta| <= max_eta (the papers' criterion) or with ||eta grad f(x)|| <= max_rel ||x||
is searched, nothing beyond.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch

from randadv.attacks import smallest_flip_step, value_and_grad
from randadv.nets import RandomMLP


def flip_steps_capped(net: RandomMLP, x: torch.Tensor, max_eta: float, max_rel: float,
                      exact: bool = True, n_grid: int = 1024) -> dict[str, np.ndarray]:
    """Per input (rows of x): f_x, grad_norm, eta (NaN: none within the bound), flipped (from the
    verifying forward pass of :func:`smallest_flip_step`) and rel_pert = ||eta grad f|| / ||x||.

    All rows are searched together up to the largest bound; a first root beyond a row's own
    bound counts as none (the first root is the smallest step, so this is the same answer as a
    search up to that bound). ``exact=False`` uses the grid bracket + Newton search of
    :func:`smallest_flip_step` (``n_grid`` points per ray) instead of the exact layer sweep: it
    returns the first sign change on the grid, and can miss excursions narrower than the grid
    step."""
    with torch.no_grad():
        _, g = value_and_grad(net, x)
    bound = torch.clamp(max_rel * x.norm(dim=1) / g.norm(dim=1).clamp_min(1e-30), min=max_eta)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)      # dead nets: eta NaN, not flipped
        r = smallest_flip_step(net, x, max_eta=float(bound.max()), exact=exact,
                               n_grid=n_grid).to("cpu")
    beyond = (r.eta_boundary.abs() > bound.cpu().to(r.eta_boundary.dtype)).numpy()
    res = {k: getattr(r, k).double().numpy().copy()
           for k in ("f_x", "grad_norm", "eta", "perturbation_norm")}
    res["flipped"] = r.flipped.numpy() & ~beyond
    res["eta"][beyond] = np.nan
    res["perturbation_norm"][beyond] = np.nan
    res["rel_pert"] = res.pop("perturbation_norm") / x.norm(dim=1).double().cpu().numpy()
    return res
