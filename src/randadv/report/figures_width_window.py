"""Figures of ``width-window``: two-layer nets across k/d with the infinite-width Gaussian process
overlaid (matplotlib, Agg). Each helper takes the experiment's summary table, writes one PNG."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from randadv.report.figures import _colors, _curves, _label, _save  # noqa: E402

WINDOW = (1 / 3, 3.0)


def _window(ax) -> None:
    ax.axvspan(*WINDOW, color="0.85", alpha=0.5, lw=0)
    ax.axvline(1.0, color="0.5", ls=":", lw=1, label="_k_eq_d")


def window_figure(table: pd.DataFrame, path: Path, max_eta: float = 20.0,
                  title: str = "") -> Path:
    """Four panels vs k/d (log), one colour per d: fraction flipped, mean |eta| (flipped),
    mean ||grad f|| and sqrt(d) mean ||eta grad f|| / ||x||, +-2 SE bands, and the GP limit at
    the same d dashed (horizontal: it does not depend on k)."""
    fig, axes = plt.subplots(2, 2, figsize=(12, 8), constrained_layout=True)
    ds = sorted(table.d.unique())
    panels = ((axes[0, 0], "flipped", "flipped_se", "gp_flipped", 1.0,
               f"fraction flipped, |eta| <= {max_eta:g}"),
              (axes[0, 1], "eta_mean", "eta_se", "gp_eta", 1.0, "mean smallest |eta| (flipped)"),
              (axes[1, 0], "grad_norm_mean", "grad_norm_se", "gp_grad_norm", 1.0,
               "mean ||grad f(x)||"),
              (axes[1, 1], "rel_mean", "rel_se", "gp_rel", None,
               "sqrt(d) mean ||eta grad f|| / ||x||"))
    for color, d in zip(_colors(len(ds)), ds, strict=True):
        g = table[table.d == d].sort_values("ratio")
        for ax, m, s, gp, scale, _ in panels:
            c = np.sqrt(d) if scale is None else scale
            y, e = g[m] * c, 2 * g[s].fillna(0) * c
            ax.plot(g.ratio, y, "o-", ms=3, color=color, label=f"d = {d}")
            ax.fill_between(g.ratio, y - e, y + e, color=color, alpha=0.15, lw=0)
            ax.plot([g.ratio.min(), g.ratio.max()], [g[gp].iloc[0] * c] * 2, "--", color=color,
                    lw=1.5, alpha=0.9, label="_gp")
    for ax, *_, lab in panels:
        _window(ax)
        ax.set_xscale("log")
        _label(ax, "k / d", lab)
    handles, labels = axes[0, 1].get_legend_handles_labels()
    handles.append(plt.Line2D([], [], color="k", ls="--"))
    labels.append("infinite width (GP), same d")
    handles.append(plt.Line2D([], [], color="0.5", ls=":"))
    labels.append("k = d")
    axes[0, 1].legend(handles, labels, fontsize=8)
    axes[0, 0].set_ylim(min(0.9, float(table.flipped.min()) - 0.02), 1.005)
    fig.suptitle(f"{title} (grey: k/d in [1/3, 3])")
    return _save(fig, path)


def window_scaling_figure(table: pd.DataFrame, exponents: pd.DataFrame, path: Path,
                          law_constant: float | None = None, title: str = "") -> Path:
    """Left: mean of eta ||grad f||^2 / |f| - 1 (exact over linearised step, +-2 SE) against
    sqrt(1/k + 1/d), one colour per d, with ``law_constant * sqrt(1/k + 1/d)`` dotted (log-log
    when every mean is positive, else symmetric-log). Right: exponent of ||delta||/||x|| vs d at
    each k/d, +-2 SE, with -1/2 dashed and +-0.1 shaded."""
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2), constrained_layout=True)
    ax = axes[0]
    for color, d, g in _curves(table, "d", "k"):
        x = np.sqrt(1.0 / g.k + 1.0 / g.d)
        ax.errorbar(x, g.nonlin_mean, yerr=2 * g.nonlin_se.fillna(0), fmt="o-", ms=3,
                    capsize=2, color=color, label=f"d = {d}")
        at = g.iloc[(np.log(g.ratio)).abs().argmin()]
        ax.plot(np.sqrt(1.0 / at.k + 1.0 / at.d), at.nonlin_mean, "s", ms=11, mfc="none",
                mew=1.8, color=color, zorder=5)
    xs = np.sqrt(1.0 / table.k + 1.0 / table.d)
    if law_constant is not None and np.isfinite(law_constant):
        xx = np.geomspace(xs.min(), xs.max(), 50)
        ax.plot(xx, law_constant * xx, "k:", label=f"{law_constant:.3f} sqrt(1/k + 1/d)")
    ax.set_xscale("log")
    if (table.nonlin_mean > 0).all():
        ax.set_yscale("log")
    else:
        ax.set_yscale("symlog", linthresh=1e-4)
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    _label(ax, "sqrt(1/k + 1/d)   (squares: k = d)", "mean eta ||grad f||^2 / |f| - 1")
    ax.legend(fontsize=8)
    ax = axes[1]
    if len(exponents):
        e = exponents.sort_values("ratio")
        ax.errorbar(e.ratio, e.slope, yerr=2 * e.slope_se, fmt="o-", ms=3, capsize=2,
                    label="fitted exponent vs d")
    ax.axhspan(-0.6, -0.4, color="C2", alpha=0.12, lw=0)
    ax.axhline(-0.5, color="k", ls="--", label="-1/2 (||eta grad f|| = O(1))")
    _window(ax)
    ax.set_xscale("log")
    _label(ax, "k / d", "exponent of mean ||delta|| / ||x|| in d")
    handles, labels = ax.get_legend_handles_labels()
    handles.append(plt.Line2D([], [], color="0.5", ls=":"))
    labels.append("k = d (grey: k/d in [1/3, 3])")
    ax.legend(handles, labels, fontsize=8)
    fig.suptitle(title)
    return _save(fig, path)
