"""Figures of ``two-layer-asymptotics``: the two-layer single step (Bubeck et al. 2021,
Section 4) over d and k from the exact law of the ray, with the infinite-width theory overlaid
(matplotlib, Agg). Each helper takes the experiment's summary table, writes one PNG."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from randadv.report.figures import _curves, _save, style_legend  # noqa: E402


def asymptotics_figure(table: pd.DataFrame, path: Path, max_eta: float = 20.0,
                       title: str = "") -> Path:
    """Four panels vs k (log), one colour per d: fraction flipped, mean |eta| (flipped), mean
    ||grad f|| and mean ||eta grad f||, +-2 SE bands; dashed in the same colour: the
    infinite-width values at that d (``flip_theory``, ``eta_theory``, ``grad_norm_theory``,
    ``pert_theory`` of the table)."""
    fig, axes = plt.subplots(2, 2, figsize=(12, 8), constrained_layout=True)
    panels = ((axes[0, 0], "flipped", "flipped_se", "flip_theory",
               f"fraction flipped, |eta| <= {max_eta:g}"),
              (axes[0, 1], "eta_mean", "eta_se", "eta_theory", "mean smallest |eta| (flipped)"),
              (axes[1, 0], "grad_norm_mean", None, "grad_norm_theory", "mean ||grad f(x)||"),
              (axes[1, 1], "pert_mean", None, "pert_theory", "mean ||eta grad f(x)||"))
    for color, d, g in _curves(table, "d", "k"):
        for ax, m, s, th, _ in panels:
            se = g[s] if s else g[m.replace("_mean", "_std")] / np.sqrt(g.n)
            ax.plot(g.k, g[m], "o-", color=color, ms=3, label=f"d = {d:g}")
            ax.fill_between(g.k, g[m] - 2 * se.fillna(0), g[m] + 2 * se.fillna(0),
                            color=color, alpha=0.12, lw=0)
            ax.plot(g.k, g[th], "--", color=color, lw=1, label="_infinite width")
    for ax, *_, label in panels:
        ax.set_xscale("log")
        ax.set_xlabel("width k")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    style_legend(axes[0, 0], [({"ls": "--"}, "infinite width (same colour)")], fontsize=8)
    fig.suptitle(title)
    return _save(fig, path)


def window_figure(table: pd.DataFrame, path: Path, title: str = "") -> Path:
    """Mean smallest |eta| over the linearised infinite-width value E|f| / E||grad f||^2
    against k/d (log), one colour per d, +-2 SE bands; 1 dotted, k = d marked. Where the curve
    leaves 1 the ray is not linear on the scale of the flip: k << d (O(k^-1/2)) or k >> d with
    small d (O(d^-3/4))."""
    fig, ax = plt.subplots(figsize=(7, 4.5), constrained_layout=True)
    for color, d, g in _curves(table, "d", "k"):
        r = g.eta_mean / g.eta_theory
        se = (g.eta_se / g.eta_theory).fillna(0)
        ax.plot(g.k / d, r, "o-", color=color, ms=3, label=f"d = {d:g}")
        ax.fill_between(g.k / d, r - 2 * se, r + 2 * se, color=color, alpha=0.12, lw=0)
    ax.axhline(1.0, color="k", ls=":", lw=1, label="linearised theory (ratio 1)")
    ax.axvline(1.0, color="0.5", ls="--", lw=1, label="k = d")
    ax.set_xscale("log")
    lo, hi = (table.k / table.d).min(), (table.k / table.d).max()
    if math.isfinite(lo) and math.isfinite(hi):
        ax.set_xlim(lo / 2, hi * 2)
    ax.set_xlabel("k / d")
    ax.set_ylabel("mean |eta| / (E|f| / E||grad f||^2)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, ncol=2)
    ax.set_title(title)
    return _save(fig, path)
