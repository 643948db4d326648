"""Figures in the style of the papers, with the theory's prediction overlaid (matplotlib, Agg)."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402


def _save(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def eta_and_grad_figure(table: pd.DataFrame, path: Path, title: str = "") -> Path:
    """Bubeck et al. (2021), Figure 1 layout: mean smallest |eta| over flipped samples (left) and
    mean ||grad f(x)|| (right) against d, one curve per width k, +-1 std bands, theory dashed."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    colors = plt.cm.viridis(np.linspace(0, 0.9, max(1, table.k.nunique())))
    for color, (k, g) in zip(colors, table.groupby("k"), strict=False):
        g = g.sort_values("d")
        for ax, m, s in ((axes[0], "eta_mean", "eta_std"),
                         (axes[1], "grad_norm_mean", "grad_norm_std")):
            ax.plot(g.d, g[m], "o-", color=color, label=f"k = {k:g}")
            ax.fill_between(g.d, g[m] - g[s].fillna(0), g[m] + g[s].fillna(0), color=color,
                            alpha=0.15)
    th = table.groupby("d")[["eta_theory", "grad_norm_theory"]].mean().sort_index()
    axes[0].plot(th.index, th.eta_theory, "k--", label="theory E|f| / E||grad f||^2")
    axes[1].plot(th.index, th.grad_norm_theory, "k--", label="theory sqrt(E||grad f||^2)")
    axes[0].set_ylabel("smallest |eta| (flipped samples)")
    axes[1].set_ylabel("||grad f(x)||")
    for ax in axes:
        ax.set_xscale("log")
        ax.set_xlabel("input dimension d")
        ax.grid(alpha=0.3)
    axes[1].set_ylim(bottom=0)
    axes[0].legend(fontsize=8)
    axes[1].legend(fontsize=8)
    fig.suptitle(title)
    return _save(fig, path)


def flip_fraction_figure(table: pd.DataFrame, path: Path, max_eta: float = 20.0,
                         title: str = "") -> Path:
    """Bubeck et al. (2021), Figure 2 layout: fraction of inputs flipped with |eta| <= max_eta on
    the (d, k) grid, one panel per depth."""
    depths = sorted(table.depth.unique())
    ncol = min(3, len(depths))
    nrow = math.ceil(len(depths) / ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(4.4 * ncol, 3.8 * nrow), squeeze=False,
                             constrained_layout=True)
    for ax, depth in zip(axes.flat, depths, strict=False):
        g = table[table.depth == depth]
        grid = g.pivot(index="d", columns="k", values="flipped").sort_index(ascending=False)
        im = ax.imshow(grid.values, vmin=0, vmax=1, cmap="RdYlGn", aspect="auto")
        ax.set_xticks(range(grid.shape[1]), [f"{k:g}" for k in grid.columns], rotation=45)
        ax.set_yticks(range(grid.shape[0]), [f"{d:g}" for d in grid.index])
        for (i, j), v in np.ndenumerate(grid.values):
            if not np.isnan(v):
                ax.text(j, i, f"{100 * v:.0f}", ha="center", va="center", fontsize=7)
        ax.set_xlabel("width k")
        ax.set_ylabel("input dimension d")
        ax.set_title(f"L = {depth}")
    for ax in list(axes.flat)[len(depths):]:
        ax.axis("off")
    fig.colorbar(im, ax=axes, shrink=0.8, label=f"fraction flipped, |eta| <= {max_eta:g}")
    fig.suptitle(title)
    return _save(fig, path)
