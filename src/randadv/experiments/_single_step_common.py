"""Shared by the single-step experiments (two-layer-single-step, two-layer-asymptotics and the
lazy ones): the record fields of a smallest flipping step, the mean / standard deviation
columns of their tables and Theorem 2's claim on the relative perturbation."""

from __future__ import annotations

from typing import Any

import pandas as pd

from randadv.attacks.result import FlipStepResult
from randadv.framework import Claim
from randadv.framework import claims as C
from randadv.stats import loglog_slope

# the per-input fields of a FlipStepResult every single-step record carries
FLIP_FIELDS = ("f_x", "grad_norm", "eta", "eta_boundary", "flipped", "perturbation_norm")


def flip_fields(r: FlipStepResult, i: int) -> dict[str, Any]:
    """The record fields :data:`FLIP_FIELDS` of input ``i`` of ``r`` (``flipped`` a bool, the
    others floats)."""
    return {k: bool(r.flipped[i]) if k == "flipped" else float(getattr(r, k)[i])
            for k in FLIP_FIELDS}


def mean_std(name: str, values: pd.Series) -> dict[str, float]:
    """``{name}_mean`` and ``{name}_std`` (ddof 1) of ``values``: a pair of summary columns."""
    return {f"{name}_mean": values.mean(), f"{name}_std": values.std(ddof=1)}


def relative_perturbation_claim(flipped: pd.DataFrame, setting: str, over: str, scale: str,
                                reached: bool) -> Claim:
    """Theorem 2's decay of the relative perturbation (Bubeck et al. 2021), checked on the
    flipped inputs ``flipped`` (a ``pert_over_x`` column per cell): the log-log slope in d of
    its mean per d is within 0.1 of -1/2. ``setting`` closes the statement, ``over`` follows
    "vs d" in the measured text."""
    g = flipped.groupby("d").pert_over_x.mean()
    return C.within(
        "Theorem 2: ||eta grad f(x)|| = O(1) while ||x|| = sqrt(d), i.e. the relative "
        f"perturbation ||delta|| / ||x|| decays like d^-1/2 ({setting})",
        loglog_slope(g.index.values, g.values), -0.5, 0.1,
        "fitted exponent of mean ||delta||/||x|| vs d{over}: {value:.3f}",
        "log-log slope within 0.1 of -0.5", scale=scale, reached=reached, over=over)
