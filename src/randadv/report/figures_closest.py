"""Figures 1 and 2 of De Palma, Kiani, Lloyd (ICML 2021): closest-adversarial distances of random
networks against the input dimension n, with Remark 5's scalings and Corollary 1's radius
overlaid (matplotlib, Agg). Input: the summary and fit tables of the ``closest-adversarial``
experiment."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from randadv.report.figures import _save  # noqa: E402

NORM_LABEL = {"l1": "l1", "l2": "l2", "linf": "l-inf"}
SCALING = {("l1", False): "c n^(1/2)", ("l2", False): "c", ("linf", False): "c n^(-1/2)"}


def _positive(v: pd.Series) -> np.ndarray:
    """Finite positive values; others (no example found: +inf) become NaN (not drawn)."""
    a = v.to_numpy(float).copy()
    a[~(np.isfinite(a) & (a > 0))] = np.nan
    return a


def distance_scaling_figure(table: pd.DataFrame, fits: pd.DataFrame, path: Path,
                            relative: bool = False, title: str = "") -> Path:
    """Figure 1 (``relative=False``): median l_p distance vs n on log-log axes, one panel per
    norm, one colour per architecture, bands 5th-95th (light) and 45th-55th (dark) percentiles,
    the fitted Remark 5 line ``c n^{1/p - 1/2}`` (dashed) and Corollary 1's radius r_p(1/2)
    (dotted; the median lies above it with probability >= 1/2 at infinite width).

    Figure 2 (``relative=True``): the same for ||delta||_p / ||x||_p with ``c n^{-1/2}``, plus a
    second row with ``sqrt(n) ||delta||_p / ||x||_p`` (flat under the Remark 5 scaling)."""
    norms = [v for v in ("l1", "l2", "linf") if v in set(table.norm)]
    archs = sorted(table.architecture.unique())
    colors = dict(zip(archs, plt.cm.tab10(np.arange(len(archs))), strict=True))
    rows = 2 if relative else 1
    fig, axes = plt.subplots(rows, len(norms), figsize=(4.8 * len(norms), 3.9 * rows),
                             squeeze=False, constrained_layout=True)
    suffix = "_rel" if relative else ""
    kind = "relative" if relative else "distance"
    for j, norm in enumerate(norms):
        for arch in archs:
            g = table[(table.norm == norm) & (table.architecture == arch)].sort_values("n")
            if g.empty:
                continue
            n = g.n.to_numpy(float)
            col = colors[arch]
            fit = fits[(fits.architecture == arch) & (fits.norm == norm) & (fits.kind == kind)]
            for i in range(rows):
                scale = np.sqrt(n) if i == 1 else np.ones_like(n)
                ax = axes[i, j]
                med = _positive(g[f"median{suffix}"]) * scale
                ax.fill_between(n, _positive(g[f"p05{suffix}"]) * scale,
                                _positive(g[f"p95{suffix}"]) * scale, color=col, alpha=0.12,
                                lw=0)
                ax.fill_between(n, _positive(g[f"p45{suffix}"]) * scale,
                                _positive(g[f"p55{suffix}"]) * scale, color=col, alpha=0.35,
                                lw=0)
                lab = arch
                if len(fit) and np.isfinite(fit.slope.iloc[0]):
                    se = fit.slope_se.iloc[0]
                    lab += f" (fit n^{fit.slope.iloc[0]:+.2f}" + \
                        (f" +- {se:.2f})" if np.isfinite(se) else ")")
                ax.plot(n, med, "o-", color=col, ms=4, label=lab)
                if len(fit) and np.isfinite(fit.c.iloc[0]):
                    nn = np.geomspace(n.min(), n.max(), 50)
                    e = fit.theory.iloc[0]
                    ax.plot(nn, fit.c.iloc[0] * nn ** e * (np.sqrt(nn) if i == 1 else 1), "--",
                            color=col, lw=1.2, label="_remark5")
                radius = g.radius_half_rel if relative else g.radius_half
                ax.plot(n, _positive(radius) * scale, ":", color=col, lw=1.2, label="_corollary1")
        for i in range(rows):
            ax = axes[i, j]
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlabel("input dimension n = 3 s^2")
            ax.grid(alpha=0.3, which="both")
        p = NORM_LABEL[norm]
        if relative:
            axes[0, j].set_ylabel(f"||delta||_{p} / ||x||_{p}")
            axes[1, j].set_ylabel(f"sqrt(n) ||delta||_{p} / ||x||_{p}")
            axes[0, j].set_title(f"{p}: median, dashed c n^(-1/2)")
        else:
            axes[0, j].set_ylabel(f"||delta||_{p}")
            axes[0, j].set_title(f"{p}: median, dashed {SCALING[(norm, False)]}")
        for i in range(rows):   # every panel's fits differ: each panel has its legend
            handles, labels = axes[i, j].get_legend_handles_labels()
            handles += [plt.Line2D([], [], color="gray", ls="--"),
                        plt.Line2D([], [], color="gray", ls=":")]
            labels += ["Remark 5 scaling, c fitted", "Corollary 1 + (23): r_p(1/2)"]
            axes[i, j].legend(handles, labels, fontsize=7, loc="best")
    fig.suptitle(title or ("Relative distance of the closest adversarial example (Figure 2)"
                           if relative else
                           "Distance of the closest adversarial example (Figure 1)")
                 + "; dotted: Corollary 1 radius r_p(1/2)", fontsize=10)
    return _save(fig, path)
