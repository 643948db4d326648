"""Smallest flipping steps with a per-input search bound (shared by the multi-layer experiments).

The exact region walk of deep ReLU nets costs one forward pass per linear region crossed, and a
ray that never flips is walked to the end of its search bound. The bound is therefore set per
input to ``max(max_eta, max_rel ||x|| / ||grad f(x)||)``: every step with |eta| <= max_eta (the
papers' criterion) or with ||eta grad f(x)|| <= max_rel ||x|| is searched, nothing beyond.
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

    ``exact=False`` uses the grid bracket + Newton search of :func:`smallest_flip_step`
    (``n_grid`` points per ray, one batched forward pass) instead of the exact region walk, whose
    cost grows with the number of regions crossed (thousands per ray at depth >= 16): it returns
    the first sign change on the grid, and can miss excursions narrower than the grid step."""
    with torch.no_grad():
        _, g = value_and_grad(net, x)
    bound = torch.clamp(max_rel * x.norm(dim=1) / g.norm(dim=1).clamp_min(1e-30), min=max_eta)
    keys = ("f_x", "grad_norm", "eta", "flipped", "perturbation_norm")
    out: dict[str, list] = {k: [] for k in keys}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)      # dead nets: eta NaN, not flipped
        for i in range(x.shape[0]):
            r = smallest_flip_step(net, x[i:i + 1], max_eta=float(bound[i]), exact=exact,
                                   n_grid=n_grid).to("cpu")
            for k in keys:
                out[k].append(getattr(r, k)[0].item())
    res = {k: np.asarray(v, dtype=bool if k == "flipped" else np.float64) for k, v in out.items()}
    res["rel_pert"] = res.pop("perturbation_norm") / x.norm(dim=1).double().cpu().numpy()
    return res
