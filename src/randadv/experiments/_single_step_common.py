"""Shared by the single-step experiments (two-layer-single-step, two-layer-asymptotics and the
lazy ones): the record fields of a smallest flipping step and the mean / standard deviation
columns of their tables."""

from __future__ import annotations

from typing import Any

import pandas as pd

from randadv.attacks.result import FlipStepResult

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
